"""Delivering registry events to subscriptions: webhooks, Slack and email, at least once.

``fanout`` turns audit events into deliveries, ``worker`` sends them (one worker across
processes, in order per subscription, retried with backoff), ``formats`` builds each kind's
message, ``send`` speaks HTTP and SMTP, and ``guard`` keeps targets off private addresses.
"""
