"""Process plumbing shared by every sleigh daemon."""
