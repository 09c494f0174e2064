// Clicking a marker [n] in an answer brings up its source in the sources panel.
// Markers are links to "#rag-src-<answer>-<n>"; the panel holds one section per answer.
(function () {
  function openSource(turn, n) {
    var body = document.getElementById("rag-sources-body");
    if (!body) return false;
    var card = document.getElementById("rag-src-" + turn + "-" + n);
    if (!card) return false;
    body.querySelectorAll(".rag-turn").forEach(function (s) {
      s.hidden = s.getAttribute("data-turn") !== String(turn);
    });
    card.open = true;
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.classList.remove("rag-flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("rag-flash");
    return true;
  }
  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest ? e.target.closest('a[href*="#rag-src-"]') : null;
    if (!link) return;
    var m = /#rag-src-(\d+)-(\d+)$/.exec(link.getAttribute("href") || "");
    if (!m) return;
    e.preventDefault();
    e.stopPropagation();
    openSource(m[1], m[2]);
  }, true);
})();
