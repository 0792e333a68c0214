// Small progressive enhancements; every page works without them (no inline script: the CSP forbids it).
document.addEventListener("input", (event) => {
  const slider = event.target;
  if (slider.matches && slider.matches("input[type=range][data-output]")) {
    const output = document.getElementById(slider.dataset.output);
    if (output) output.textContent = slider.value;
  }
});

// The dashboard's notifications stay live: poll the page's own JSON feed (same origin, no inline script).
const feed = document.getElementById("notifications");
if (feed && feed.dataset.feed) {
  const refresh = async () => {
    try {
      const response = await fetch(feed.dataset.feed, { credentials: "same-origin" });
      if (!response.ok) return;
      const { items } = await response.json();
      feed.replaceChildren(...(items.length ? items : [{ title: "—" }]).map((item) => {
        const li = document.createElement("li");
        if (item.unread) li.className = "unread";
        if (item.link) {
          const a = document.createElement("a");
          a.href = item.link;
          a.textContent = item.title;
          li.append(a, ` (${item.when})`);
        } else {
          li.textContent = item.title;
        }
        return li;
      }));
    } catch (error) {
      // Offline or signed out: keep what is shown.
    }
  };
  setInterval(refresh, 15000);
}
