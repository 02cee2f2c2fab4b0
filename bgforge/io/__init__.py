"""Reading and writing: images, shards, metadata, previews."""
