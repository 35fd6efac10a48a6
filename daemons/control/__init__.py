"""The operator's command, ``sleigh``: run the shop, report status, manage the data."""
