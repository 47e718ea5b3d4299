"""Search spaces, keras-tuner tuners and the study lifecycle (`extf train` is a study of one fixed trial)."""
