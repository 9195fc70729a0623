"""The Turing test's tabs of the web app, one module per feature; turing_test/ui.py re-exports
what app.py, the command line and outside code use.

The rule of the package: gradio is imported only by the modules that really need it (the
service, the handlers raising gr.Error, the layouts). These are gradio-free and must stay so:
`report` (what the dashboard and the export show: charts, tables, summary, exclusion rules; no
database either) and `state` (the typed per-user state and the settings form). Each module's
docstring says which kind it is. Nothing is imported here, so importing a gradio-free module
loads no gradio.

Modules:

* `state`: dataclasses Session (a participant's gr.State) and SurveySettings (the Settings panel);
* `report`: the dashboard's summary, chart and tables, the export's tables, the exclusion rules;
* `service`: TuringService (store, stimulus files, admin token and its throttle, demo survey),
  the client address of a request, the garbage collector's settings for a server;
* `participant`: the participant tab, its handlers and the public API (turing_start,
  turing_secret, turing_vote);
* `admin`: the admin tab (one builder per panel), its handlers and the admin token's check;
* `tabs`: `build_turing_tabs` and `_Turing`, what the two tabs share.
"""
import os

# Gradio recomputes a pandas summary of up to 10,000 past events after every event (for its
# optional monitoring page) unless told otherwise: under a survey's steady stream of votes that
# costs more CPU than the votes themselves. Refresh it every 1000 events instead. (Set here,
# before any module of the package imports gradio.)
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
