"""Import preference data from TRL, HH-RLHF and UltraFeedback files into the store, and export it.

Errors are `prefpipe.errors.DataError`."""
from prefpipe.data.interchange.exporter import export_preferences
from prefpipe.data.interchange.formats import FORMATS, Preference
from prefpipe.data.interchange.importer import (
    ImportReport,
    import_for_training,
    import_preferences,
)

__all__ = ["FORMATS", "ImportReport", "Preference", "export_preferences",
           "import_for_training", "import_preferences"]
