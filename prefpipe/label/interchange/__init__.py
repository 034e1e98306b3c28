"""Import preference data from TRL, HH-RLHF and UltraFeedback files into the store, and export it."""
from prefpipe.label.interchange.exporter import export_preferences
from prefpipe.label.interchange.formats import FORMATS, InterchangeError, Preference
from prefpipe.label.interchange.importer import (
    ImportReport,
    import_for_training,
    import_preferences,
)

__all__ = ["FORMATS", "ImportReport", "InterchangeError", "Preference", "export_preferences",
           "import_for_training", "import_preferences"]
