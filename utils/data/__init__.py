"""Reading, checking and converting annotations; the tf.data pipeline and its augmentations."""
