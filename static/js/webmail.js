// Webmail's few helpers: new mail without a reload, keyboard shortcuts, folders on wide screens.
// Every page works without this file; it only saves reloads and mouse trips.
(function () {
  "use strict";

  const mail = document.querySelector(".mail[data-news]");
  if (!mail) return;

  // Folders: open beside the list on wide screens where CSS cannot force it (no ::details-content).
  const menu = mail.querySelector(".folders-menu");
  if (menu && !CSS.supports("selector(::details-content)")) {
    const wide = window.matchMedia("(min-width: 48.0625rem)");
    const follow = () => { menu.open = wide.matches; };
    follow();
    wide.addEventListener("change", follow);
  }

  // New mail ---------------------------------------------------------------------------------
  // While the tab is visible, ask every data-poll-seconds what changed since the page was made.
  // The answer is 204 when nothing did; else the folder list (and the first page's rows).

  const baseTitle = document.title;
  const seconds = Math.max(1, Number(mail.dataset.pollSeconds) || 45);
  let since = mail.dataset.since;
  let timer = null;
  let stopped = false;

  function inboxUnread() {
    const count = mail.querySelector('.folders li[data-folder="INBOX"] .count');
    return count ? parseInt(count.textContent, 10) || 0 : 0;
  }

  function showUnread(unread) {
    document.title = unread > 0 ? `(${unread}) ${baseTitle}` : baseTitle;
  }

  function fromHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html; // rendered and escaped by the server
    return template.content;
  }

  function replaceRows(html) {
    const body = document.querySelector("table.messages tbody");
    if (!body) {
      // The folder was empty: the list itself has to come from the server.
      if (!typing(document.activeElement)) window.location.reload();
      return;
    }
    const checked = new Set(
      [...body.querySelectorAll('input[name="uid"]:checked')].map((box) => box.value)
    );
    const chosen = currentRow()?.querySelector('input[name="uid"]')?.value;
    const focused = body.contains(document.activeElement);
    body.replaceChildren(fromHTML(html));
    for (const box of body.querySelectorAll('input[name="uid"]')) {
      if (checked.has(box.value)) box.checked = true;
      if (box.value === chosen) box.closest("tr").classList.add("current");
    }
    // Keep the keyboard where it was: on the chosen message, not back at the page's start.
    if (focused) currentRow()?.querySelector(".col-subject a")?.focus({ preventScroll: true });
  }

  async function poll() {
    timer = null;
    if (stopped || document.visibilityState !== "visible") return;
    const url = new URL(mail.dataset.news, window.location.href);
    url.searchParams.set("since", since);
    try {
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const json = (response.headers.get("Content-Type") || "").startsWith("application/json");
      if (response.ok && response.status !== 204 && !json) {
        stopped = true; // signed out, or Webmail wants a password: the next reload will say
        return;
      }
      if (json) {
        const news = await response.json();
        since = news.since;
        const list = mail.querySelector(".folders > ul");
        if (list) list.replaceWith(fromHTML(news.folders));
        if (news.rows !== undefined) replaceRows(news.rows);
        const range = document.querySelector(".pagination > span:first-child");
        if (range && news.range) range.textContent = news.range;
        showUnread(news.unread);
      }
    } catch (error) {
      // Offline for a moment, or the server is restarting: try again next time.
    } finally {
      schedule();
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = null;
    if (!stopped && document.visibilityState === "visible") {
      timer = window.setTimeout(poll, seconds * 1000);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      poll(); // catch up at once, then every interval
    } else {
      window.clearTimeout(timer);
      timer = null;
    }
  });
  showUnread(inboxUnread());
  schedule();

  // Keyboard ---------------------------------------------------------------------------------

  const dialog = document.getElementById("shortcuts");

  function typing(element) {
    if (!element) return false;
    if (element.isContentEditable) return true;
    if (element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
    if (element.tagName !== "INPUT") return false;
    return !["checkbox", "radio", "button", "submit", "reset"].includes(element.type);
  }

  function rows() {
    return [...document.querySelectorAll("table.messages tbody tr")];
  }

  function currentRow() {
    return document.querySelector("table.messages tbody tr.current");
  }

  function choose(row) {
    for (const other of document.querySelectorAll("table.messages tbody tr.current")) {
      other.classList.remove("current");
    }
    row.classList.add("current");
    const link = row.querySelector(".col-subject a");
    if (link) link.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function step(by) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(currentRow());
    const next = at < 0 ? (by > 0 ? 0 : all.length - 1) : at + by;
    if (next >= 0 && next < all.length) choose(all[next]);
  }

  // Act on the chosen row through the list's own form, so the server's rules apply as for
  // the buttons (deleting for good still asks first).
  function actOnRow(row, action) {
    const listForm = row.closest("form");
    const form = document.createElement("form");
    form.method = "post";
    form.action = listForm.getAttribute("action"); // .action is the buttons named "action"
    for (const name of ["csrfmiddlewaretoken", "folder", "next"]) {
      form.append(hidden(name, listForm.elements[name].value));
    }
    form.append(hidden("uid", row.querySelector('input[name="uid"]').value));
    form.append(hidden("action", action));
    document.body.append(form);
    form.submit();
  }

  function hidden(name, value) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function click(selector) {
    const element = document.querySelector(selector);
    if (element) element.click();
    return Boolean(element);
  }

  const onMessage = Boolean(document.querySelector("article.message"));

  const shortcuts = {
    j: () => (onMessage ? click('.message-nav a[rel="next"]') : step(1)),
    k: () => (onMessage ? click('.message-nav a[rel="prev"]') : step(-1)),
    o: () => (onMessage ? null : currentRow()?.querySelector(".col-subject a")?.click()),
    Enter: () => (onMessage ? null : currentRow()?.querySelector(".col-subject a")?.click()),
    u: () => click(".back a"),
    s: () => {
      if (onMessage) return click('.message-actions button[value="flag"], .message-actions button[value="unflag"]');
      const row = currentRow();
      if (row) actOnRow(row, row.classList.contains("flagged") ? "unflag" : "flag");
    },
    "#": () => {
      if (onMessage) return click('.message-actions button[value="delete"]');
      const row = currentRow();
      if (row) actOnRow(row, "delete");
    },
    "/": () => {
      const search = document.getElementById("search-q");
      if (search) search.focus();
    },
    "?": () => {
      if (dialog && !dialog.open) dialog.showModal();
    },
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target) || (dialog && dialog.open)) return;
    const shortcut = shortcuts[event.key];
    if (!shortcut) return;
    // Enter on a link or button already does what it says.
    if (event.key === "Enter" && event.target.closest("a, button, input, summary")) return;
    event.preventDefault();
    shortcut();
  });
})();
