"""Don't trust the client: signed cookies, CSRF tokens, security headers."""
