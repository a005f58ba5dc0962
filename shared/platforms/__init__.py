"""Ad platforms: the OAuth registry, the token protocol, and the report connectors.

base.py       shared types and the provider error tree
registry.py   one entry per platform: endpoints, scopes, revocation, lifetimes
oauth.py      code exchange, refresh and revoke over each platform's protocol
reports/      one connector per platform, normalising into the daily table
"""
