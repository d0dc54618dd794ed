/* tradedb report: draws the charts from the figures embedded in the page.
 *
 * Each chart is a <div data-figure=ID> whose figure is the JSON of <script id=ID>. A chart
 * is drawn when it is first shown: the charts of the selected market only, so a report of
 * many markets opens as fast as a report of one. Candle charts keep their price and volume
 * axes fitted to the candles in view as the x range changes (plotly.js leaves them at the
 * whole series' range). Nothing here loads anything: the page works offline.
 */
(function () {
  "use strict";

  var template = JSON.parse(document.getElementById("plotly-template").textContent);
  var drawing = [];
  var times = new WeakMap(); // trace -> its x as epoch ms

  function utc(ms) {
    // plotly.js reads numbers on a date axis as local time; text without a zone as is.
    return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  }

  function millis(text) {
    return Date.parse(String(text).replace(" ", "T") + "Z");
  }

  function decode(column) {
    if (column.steps) {
      var at = column.first;
      return column.steps.map(function (step) {
        at += step * column.unit;
        return utc(at);
      });
    }
    // An integer over a power of ten is the double nearest the decimal it stands for.
    var divisor = Math.pow(10, column.scale);
    return column.units.map(function (units) {
      return units === null ? null : units / divisor;
    });
  }

  function resolve(node, columns) {
    Object.keys(node).forEach(function (key) {
      var value = node[key];
      if (value && typeof value === "object" && !Array.isArray(value)) {
        if (typeof value.column === "string") {
          node[key] = columns[value.column];
        } else {
          resolve(value, columns);
        }
      }
    });
  }

  function figure(id) {
    var spec = JSON.parse(document.getElementById(id).textContent);
    var columns = {};
    Object.keys(spec.columns).forEach(function (name) {
      columns[name] = decode(spec.columns[name]);
    });
    spec.data.forEach(function (trace) {
      resolve(trace, columns);
    });
    spec.layout.template = template;
    return spec;
  }

  function extent(data, axis, low, high) {
    var least = Infinity;
    var most = -Infinity;
    data.forEach(function (trace) {
      if ((trace.yaxis || "y") !== axis || trace.visible === "legendonly") {
        return;
      }
      var lows = trace.type === "candlestick" ? trace.low : trace.y;
      var highs = trace.type === "candlestick" ? trace.high : trace.y;
      if (!times.has(trace)) {
        times.set(trace, trace.x.map(millis));
      }
      var at = times.get(trace);
      for (var i = 0; i < at.length; i += 1) {
        if (at[i] >= low && at[i] <= high) {
          if (lows[i] !== null && lows[i] < least) {
            least = lows[i];
          }
          if (highs[i] !== null && highs[i] > most) {
            most = highs[i];
          }
        }
      }
    });
    return [least, most];
  }

  // The y ranges that fit what the x range shows: {"yaxis.range": [low, high], ...}.
  function fitted(data, layout, follow) {
    var range = layout.xaxis.range;
    var update = {};
    if (!range) {
      return update;
    }
    var low = millis(range[0]);
    var high = millis(range[1]);
    follow.forEach(function (name) {
      var axis = "y" + name.slice(5);
      var found = extent(data, axis, low, high);
      if (!isFinite(found[0])) {
        return;
      }
      if (layout[name] && layout[name].rangemode === "tozero") {
        update[name + ".range"] = [0, found[1] * 1.08 || 1];
      } else {
        var margin = (found[1] - found[0]) * 0.06 || Math.abs(found[1]) * 0.01 || 1;
        update[name + ".range"] = [found[0] - margin, found[1] + margin];
      }
    });
    return update;
  }

  function draw(element) {
    if (element.dataset.drawn) {
      Plotly.Plots.resize(element);
      return Promise.resolve();
    }
    element.dataset.drawn = "drawing";
    var spec = figure(element.dataset.figure);
    var first = fitted(spec.data, spec.layout, spec.follow);
    Object.keys(first).forEach(function (key) {
      spec.layout[key.split(".")[0]].range = first[key];
    });
    var config = { displaylogo: false, responsive: true, scrollZoom: false };
    return Plotly.newPlot(element, spec.data, spec.layout, config).then(function () {
      if (spec.follow.length) {
        element.on("plotly_relayout", function (change) {
          var keys = Object.keys(change);
          if (keys.some(function (key) { return key.indexOf("xaxis") === 0; })) {
            Plotly.relayout(element, fitted(element.data, element.layout, spec.follow));
          }
        });
      }
      element.dataset.drawn = "yes";
    });
  }

  function drawVisible(root) {
    var charts = root.querySelectorAll("div[data-figure]");
    Array.prototype.forEach.call(charts, function (element) {
      if (!element.closest("[hidden]")) {
        drawing.push(draw(element));
      }
    });
  }

  var choice = document.getElementById("market-choice");
  if (choice) {
    choice.addEventListener("change", function () {
      var markets = document.querySelectorAll("section.market");
      Array.prototype.forEach.call(markets, function (section) {
        section.hidden = section.id !== choice.value;
      });
      drawVisible(document.getElementById(choice.value));
    });
  }
  if (window.Plotly) {
    drawVisible(document);
    // Marks the page once its first charts are drawn, for whatever waits on it (the
    // browser tests do).
    Promise.all(drawing).then(function () {
      document.documentElement.dataset.drawn = String(drawing.length);
    });
  }
})();
