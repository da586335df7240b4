"""Downstream views: Redis availability, store status and catalog views kept from the public topics."""
