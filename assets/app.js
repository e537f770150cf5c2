// Souk storefront enhancements. Every page works without this file: it only adds
// search suggestions, variant switching, quantity steppers and auto-submitting selects.
(function () {
  "use strict";
  var $ = function (s, r) { return (r || document).querySelector(s); };
  var $$ = function (s, r) { return Array.prototype.slice.call((r || document).querySelectorAll(s)); };

  // Suggestions under the search box (GET /api/v1/search/suggestions?q=).
  var q = $("input[data-suggest]"), list = $("#q-suggestions"), timer, active = -1;
  if (q && list && window.fetch) {
    var close = function () { list.hidden = true; list.innerHTML = ""; active = -1; q.setAttribute("aria-expanded", "false"); };
    var go = function (item) {
      var kind = item.getAttribute("data-kind"), value = item.getAttribute("data-value"), text = item.getAttribute("data-text");
      location.href = kind === "category" ? "/search?category=" + encodeURIComponent(value)
        : kind === "brand" ? "/search?brand=" + encodeURIComponent(value)
        : "/search?q=" + encodeURIComponent(text);
    };
    q.addEventListener("input", function () {
      clearTimeout(timer);
      var v = q.value.trim();
      if (!v) { close(); return; }
      timer = setTimeout(function () {
        fetch(q.getAttribute("data-suggest") + "?q=" + encodeURIComponent(v)).then(function (r) {
          return r.ok ? r.json() : { items: [] };
        }).then(function (d) {
          list.innerHTML = "";
          (d.items || []).forEach(function (s, i) {
            var li = document.createElement("li");
            li.id = "sugg-" + i;
            li.setAttribute("role", "option");
            li.setAttribute("data-kind", s.kind);
            li.setAttribute("data-value", s.value);
            li.setAttribute("data-text", s.text);
            li.textContent = s.text + " ";
            var k = document.createElement("small");
            k.textContent = s.kind;
            li.appendChild(k);
            li.addEventListener("mousedown", function (e) { e.preventDefault(); go(li); });
            list.appendChild(li);
          });
          list.hidden = !list.children.length;
          q.setAttribute("aria-expanded", list.hidden ? "false" : "true");
        }).catch(close);
      }, 150);
    });
    q.addEventListener("keydown", function (e) {
      var items = $$("li", list);
      if (!items.length) return;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach(function (li, i) { li.setAttribute("aria-selected", i === active ? "true" : "false"); });
        q.setAttribute("aria-activedescendant", items[active].id);
      } else if (e.key === "Enter" && active >= 0) {
        e.preventDefault();
        go(items[active]);
      } else if (e.key === "Escape") {
        close();
      }
    });
    q.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  // Selects that apply on change (the Apply button stays for keyboard and no-JS users).
  $$("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  // Variant switching: price and stock follow the chosen variant.
  var variant = $("select[data-variants]");
  if (variant) {
    var show = function () {
      var o = variant.options[variant.selectedIndex];
      var price = $("[data-variant-price]"), stock = $("[data-variant-stock]"), buy = $("[data-buy]");
      if (price) price.textContent = o.getAttribute("data-price");
      if (stock) {
        var ok = o.getAttribute("data-in-stock") === "true";
        stock.textContent = stock.getAttribute(ok ? "data-in" : "data-out");
        stock.className = "stock " + (ok ? "in" : "out");
        if (buy) buy.disabled = !ok;
      }
    };
    variant.addEventListener("change", show);
    show();
  }

  // Quantity steppers around number inputs.
  $$("input[data-stepper]").forEach(function (input) {
    var make = function (label, delta) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = label;
      b.setAttribute("aria-label", (delta > 0 ? "+" : "-") + "1");
      b.addEventListener("click", function () {
        var min = +input.min || 1, max = +input.max || 99, v = (+input.value || min) + delta;
        input.value = Math.min(max, Math.max(min, v));
      });
      return b;
    };
    input.parentNode.insertBefore(make("−", -1), input);
    input.parentNode.insertBefore(make("+", 1), input.nextSibling);
  });
})();
