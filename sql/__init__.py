"""The numbered migrations, installed as the package `stock_platform.sql` (setup.py) so a plain install finds them."""
