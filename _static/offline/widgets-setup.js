/* Loaded on pages with widgets, between require.js and the widget manager (embed-amd.js):
   see nb_ipywidgets_js in _config.yml. Not added to other pages (scripts/offline_site.py). */
(function () {
  var here = document.currentScript && document.currentScript.src;
  var staticRoot = here ? here.replace(/offline\/widgets-setup\.js[^\/]*$/, "") : "_static/";

  // 1. The widget manager loads its Font Awesome fonts relative to its own module path;
  //    map that path onto the vendored copy so they come from this site, at any page depth.
  if (window.require && window.require.config) {
    window.require.config({
      paths: { "@jupyter-widgets/html-manager/dist": staticRoot + "vendor/html-manager" }
    });
  }

  // 2. ipywidgets typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the site
  //    runs MathJax 3, so route those calls to MathJax 3's typesetPromise.
  function mathjaxShim() {
    var mathjax = window.MathJax;
    if (mathjax && !mathjax.Hub) {
      mathjax.Hub = {
        Queue: function (job) {
          var element = job && job[2];
          var current = window.MathJax;
          if (current && current.typesetPromise) {
            current.typesetPromise(element ? [element] : undefined).catch(function () {});
          }
        }
      };
    }
  }
  document.addEventListener("DOMContentLoaded", mathjaxShim);
  window.addEventListener("load", mathjaxShim, true);
})();
