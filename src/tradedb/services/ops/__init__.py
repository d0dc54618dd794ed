"""Operations: retention with archives, backups, replication and scheduled maintenance."""
