"""Keep a Spotify Ads Manager customer-list audience equal to a segment of your data."""

__version__ = "0.1.0"
