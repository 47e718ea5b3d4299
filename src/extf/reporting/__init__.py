"""`extf report`: one self-contained HTML file of a study (no network needed to read it).

study.py reads the study back from MLflow, charts.py draws the parallel coordinates (inline SVG) and the
hyperparameter importance, page.py writes the HTML, command.py is the command line. Nothing here imports TensorFlow.
"""
