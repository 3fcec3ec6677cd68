// modelreg web UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // "/" focuses the search box, unless the user is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    var box = document.querySelector("[data-slash-focus]");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });

  // A copy button after each copyable reference (plain selectable text without JavaScript).
  function addCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("[data-copy]").forEach(function (node) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy " + node.getAttribute("data-copy"));
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(node.getAttribute("data-copy")).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        });
      });
      node.insertAdjacentElement("afterend", button);
    });
  }

  // Forms marked data-confirm ask before they send (rollback, revoke).
  function addConfirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    addCopyButtons();
    addConfirmations();
  });
})();
