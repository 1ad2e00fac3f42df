"""Organizations (tenants), people, memberships, API keys and password login."""
