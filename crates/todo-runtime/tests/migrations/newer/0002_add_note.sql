ALTER TABLE rollback_probe ADD COLUMN note TEXT;
