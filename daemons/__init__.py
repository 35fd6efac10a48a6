"""The daemons of sleigh and the process plumbing they share."""
