"""Thin HTTP handlers: validate, call one collaborator, shape the answer."""
