"""The shop's outside world behind interfaces: payment providers and mail."""
