// Where the widget manager finds its own files (the Font Awesome 5 fonts its CSS names).
//
// embed-amd.js (@jupyter-widgets/html-manager 1.0.6) defines RequireJS modules named
// "@jupyter-widgets/base", "@jupyter-widgets/controls" and "@jupyter-widgets/html-manager/dist/libembed-amd",
// and its CSS looks for its font files in the folder of each module's URL. RequireJS resolves those
// names against the page's own folder (chapters/@jupyter-widgets/...), where nothing is served, so
// every page with a widget view asked for missing fonts. Mapping the names to this folder, which
// holds the fonts (woff2, copied from the same package's dist/), makes the URLs resolve to the
// book's own copy. Loaded after require.js and before embed-amd.js (nb_ipywidgets_js in _config.yml).
(function () {
  var here = new URL(".", document.currentScript.src).href.replace(/\/$/, "");
  window.require.config({paths: {"@jupyter-widgets": here, "@jupyter-widgets/html-manager/dist": here}});
})();
