"""The store: the only layer that writes SQL."""

from tradedb.store.database import Database
from tradedb.store.repository import Page, Repository, TableSpec
from tradedb.store.store import Store

__all__ = ["Database", "Page", "Repository", "Store", "TableSpec"]
