"""The Colorize tab of the web app, one module per feature; colorizer/ui.py re-exports what
app.py and outside code use.

The rule of the package: gradio is imported only by colorizer/ui.py and by the modules here that
really need it (components, handlers raising gr.Error, the layout). These modules are
gradio-free and must stay so: `state` (the typed per-user state and a request's settings),
`files` (cache folder, result files, examples, previews), `models` (the shared model cache) and
`hint_geometry` (clicks to points, markers, the hint list). Each module's docstring says which
kind it is. Nothing is imported here, so importing one gradio-free module loads no gradio.

Modules:

* `state`: dataclasses Result (a user's last result), HintPoint and HintState (the page's color
  hints), Variations (a user's last variations), RequestSettings (one request's settings);
* `files`, `models`: see above;
* `running`: `user_errors`, `heavy` and HEAVY_GROUP (how every handler runs);
* `components`: the sliders and photo inputs that check what they get, theme and CSS;
* `request`: checking a request's settings and its cost, loading the model and photo (`prepare`);
* `one_photo`, `compare`, `batch`, `hint_events`, `variations`: the event handlers;
* `layout`: `build_colorize_tab`, one builder per panel, and the event wiring.
"""
