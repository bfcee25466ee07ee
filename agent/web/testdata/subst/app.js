// jQuery code an appliance ships: the old agent substituted every file.
$(function () {
  var host = "$hostname", v = '${version1}';
  $.getJSON("/api?x=" + encodeURIComponent(host), function (d) { $("#v").text(d.v + v); });
  var $$money = "$$";
});
