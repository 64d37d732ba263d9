// The search page. Its state lives in the URL (?collection=&q=&mode=&rerank=1&diverse=0.5&dedup=1&page=2&f.suffix=".md"),
// so a search is a link and back/forward replay searches. It calls the server's own API;
// nothing is loaded from another host.
"use strict";

const PAGE_SIZE = 10;
const MAX_HITS = 1000;  // the API's top_k limit
const DIVERSITY = ["0.7", "0.5", "0.3"];  // MMR's lambda: low, medium, high diversity
const $ = (id) => document.getElementById(id);
const form = $("search");
const statusLine = $("status");
const hitsList = $("hits");
const keyInput = $("key");
const collectionSelect = $("collection");
keyInput.value = localStorage.getItem("omniretrieve-key") || "";
let queryImage = null;  // a data URI: the query's image, with its text if any
let lastHits = [];
let pictureUrls = [];  // object URLs of the pictures shown (revoked when replaced)

// the key the user types is kept in this browser (written when typed, read on each request)
keyInput.addEventListener("input", () => localStorage.setItem("omniretrieve-key", keyInput.value.trim()));

function authorization() {
  const key = (localStorage.getItem("omniretrieve-key") || "").trim();
  return key ? { authorization: "Bearer " + key } : {};
}

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

async function failure(response) {
  try {
    const data = await response.json();
    return new Error((data.error && data.error.message) || response.statusText);
  } catch (error) {
    return new Error(response.status + " " + response.statusText);
  }
}

async function request(path, body, method) {
  const response = await fetch(path, {
    method: method || (body === undefined ? "GET" : "POST"),
    headers: { "content-type": "application/json", ...authorization() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

function collectionPath(collection) {
  return "v1/collections/" + encodeURIComponent(collection);
}

function documentPath(collection, area, docId) {
  // the whole id as one path segment ("/" too): an id can never reach another endpoint
  return collectionPath(collection) + "/" + area + "/" + encodeURIComponent(docId);
}

async function picture(collection, docId, full) {
  // a document's picture, fetched with the key (an <img> cannot send it) as an object URL
  const response = await fetch(documentPath(collection, "images", docId) + (full ? "?full=true" : ""),
    { headers: authorization() });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  pictureUrls.push(url);
  return url;
}

// -- the URL is the state ---------------------------------------------------------------
function state() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const [name, value] of params) {
    if (!name.startsWith("f.")) continue;
    try { filters[name.slice(2)] = JSON.parse(value); } catch (error) { /* a hand-made link */ }
  }
  return {
    collection: params.get("collection") || "",
    q: params.get("q") || "",
    mode: params.get("mode") || "hybrid",
    rerank: params.get("rerank") === "1",
    diverse: DIVERSITY.includes(params.get("diverse")) ? params.get("diverse") : "",
    dedup: params.get("dedup") === "1",
    page: Math.max(1, Math.min(MAX_HITS / PAGE_SIZE, parseInt(params.get("page") || "1", 10) || 1)),
    filters,
  };
}

function link(changes) {
  const next = { ...state(), ...changes };
  const params = new URLSearchParams();
  if (next.collection) params.set("collection", next.collection);
  params.set("q", next.q);
  params.set("mode", next.mode);
  if (next.rerank) params.set("rerank", "1");
  if (next.diverse) params.set("diverse", next.diverse);
  if (next.dedup) params.set("dedup", "1");
  if (next.page > 1) params.set("page", String(next.page));
  for (const [name, value] of Object.entries(next.filters)) params.set("f." + name, JSON.stringify(value));
  return "?" + params.toString();
}

function go(changes) {
  history.pushState(null, "", link(changes));
  show();
}

// -- collections --------------------------------------------------------------------------
async function loadCollections() {
  // the list is replaced, never appended to: back/forward and reloads leave one copy
  const listed = await request("v1/collections");
  collectionSelect.replaceChildren(...listed.collections.map((name) => new Option(name, name)));
  $("empty").hidden = listed.collections.length > 0;
  return listed.collections;
}

const collectionInfo = new Map();  // name -> {facets, query_image}

async function describe(collection) {
  if (!collectionInfo.has(collection)) {
    const [shown, faceted] = await Promise.all([
      request(collectionPath(collection)),
      request(collectionPath(collection) + "/facets"),
    ]);
    collectionInfo.set(collection, { facets: faceted.facets, queryImage: shown.query_image });
  }
  return collectionInfo.get(collection);
}

function showFilters(facets, chosen) {
  const box = $("filters");
  box.replaceChildren();
  for (const [field, values] of Object.entries(facets)) {
    const label = document.createElement("label");
    label.append(field + " ");
    const select = document.createElement("select");
    select.dataset.field = field;
    select.append(new Option("any", ""));
    for (const [value, count] of values) {
      select.append(new Option(value + " (" + count + ")", JSON.stringify(value)));
    }
    if (field in chosen) select.value = JSON.stringify(chosen[field]);
    select.addEventListener("change", () => {
      const filters = { ...state().filters };
      if (select.value) filters[field] = JSON.parse(select.value); else delete filters[field];
      go({ filters, page: 1, collection: collectionSelect.value, q: $("q").value });
    });
    label.append(select);
    box.append(label);
  }
}

// -- hits ---------------------------------------------------------------------------------
function marked(text, offset, highlights) {
  // ``text`` (starting at document offset ``offset``) with its highlights marked
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (const [start, end] of highlights) {
    const from = start - offset;
    const to = end - offset;
    if (from < position || to > text.length) continue;
    fragment.append(text.slice(position, from));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(from, to);
    fragment.append(mark);
    position = to;
  }
  fragment.append(text.slice(position));
  return fragment;
}

function snippetElement(hit) {
  // the hit's text, cut at word boundaries by the server: ellipses say where it was cut
  const element = document.createElement("p");
  element.className = "snippet";
  if (hit.text_start > 0) element.append("… ");
  element.append(marked(hit.text, hit.text_start, hit.highlights));
  if (hit.text_start + hit.text.length < hit.document_chars) element.append(" …");
  return element;
}

function where(hit) {
  const metadata = hit.metadata || {};
  const parts = [];
  if (metadata.path && metadata.path !== hit.doc_id) parts.push(metadata.path);
  else if (metadata.title) parts.push(hit.doc_id);
  if (metadata.page && metadata.pages > 1) parts.push("page " + metadata.page + " of " + metadata.pages);
  return parts.join(" · ");
}

function hitElement(collection, hit) {
  const item = document.createElement("li");
  item.className = "hit";
  item.dataset.id = hit.doc_id;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "open";
  open.textContent = hit.metadata && hit.metadata.title ? hit.metadata.title : hit.doc_id;
  open.addEventListener("click", () => openHit(collection, hit));
  item.append(open);
  const place = where(hit);
  if (place) {
    const line = document.createElement("div");
    line.className = "where";
    line.textContent = place;
    item.append(line);
  }
  const scores = document.createElement("div");
  scores.className = "scores";
  scores.textContent = "score " + hit.score.toFixed(4) + " · " +
    Object.entries(hit.scores).map(([stage, value]) => stage + " " + value.toFixed(3)).join(" · ");
  item.append(scores, snippetElement(hit));
  if (hit.has_image) {
    const image = document.createElement("img");
    image.className = "thumbnail";
    image.alt = hit.doc_id;
    image.addEventListener("click", () => openHit(collection, hit));
    picture(collection, hit.doc_id, false).then((url) => { image.src = url; }).catch(() => image.remove());
    item.append(image);
  }
  if (hit.duplicates && hit.duplicates.length) {
    const similar = document.createElement("div");
    similar.className = "duplicates";
    similar.textContent = "+" + hit.duplicates.length + " similar: " + hit.duplicates.join(", ");
    item.append(similar);
  }
  if (hit.warning) {
    const warning = document.createElement("div");
    warning.className = "warning";
    warning.textContent = hit.warning;
    item.append(warning);
  }
  return item;
}

async function openHit(collection, hit) {
  // the document view: its whole text with the hit's highlights, or its page / picture
  const viewer = $("viewer");
  $("viewer-title").textContent = hit.metadata && hit.metadata.title ? hit.metadata.title : hit.doc_id;
  $("viewer-meta").textContent = [hit.doc_id, where(hit)].filter((part) => part).join(" · ");
  const image = $("viewer-image");
  image.hidden = true;
  image.removeAttribute("src");
  $("viewer-text").replaceChildren("loading…");
  if (!viewer.open) viewer.showModal();
  try {
    const stored = await request(documentPath(collection, "documents", hit.doc_id));
    $("viewer-text").replaceChildren(marked(stored.text, 0, hit.highlights));
    if (hit.has_image) {
      image.alt = hit.doc_id;
      image.src = await picture(collection, hit.doc_id, true);
      image.hidden = false;
    }
  } catch (error) {
    $("viewer-text").replaceChildren(error.message);
  }
}

function showNotes(answer) {
  const notes = $("notes");
  notes.replaceChildren(...Object.entries(answer.query_notes || {}).map(([stage, note]) => {
    const item = document.createElement("li");
    item.textContent = stage + ": " + note;
    return item;
  }));
}

function showPage(collection, current) {
  const from = (current.page - 1) * PAGE_SIZE;
  const shown = lastHits.slice(from, from + PAGE_SIZE);
  for (const url of pictureUrls) URL.revokeObjectURL(url);
  pictureUrls = [];
  hitsList.start = from + 1;
  hitsList.replaceChildren(...shown.map((hit) => hitElement(collection, hit)));
  const more = lastHits.length > from + PAGE_SIZE;
  $("pager").hidden = current.page === 1 && !more;
  $("previous").disabled = current.page === 1;
  $("next").disabled = !more;
  $("page-number").textContent = "page " + current.page;
}

async function search(current) {
  const text = current.q.trim();
  if (!text && !queryImage) {  // nothing asked yet
    hitsList.replaceChildren();
    $("pager").hidden = true;
    return;
  }
  if (!current.collection) {
    hitsList.replaceChildren();
    say(collectionSelect.options.length ? "Choose a collection first." :
      "There is no collection yet: create one above, then add files.", true);
    return;
  }
  const query = queryImage ? (text ? { text, image: queryImage } : { image: queryImage }) : text;
  say("searching…");
  try {
    const body = {
      query,
      mode: current.mode,
      rerank: current.rerank,
      // one more than this page holds: whether a next page exists
      top_k: Math.min(MAX_HITS, current.page * PAGE_SIZE + 1),
      max_chars: 400,
    };
    if (current.diverse) body.diversity = parseFloat(current.diverse);
    if (current.dedup) body.collapse_duplicates = true;
    if (Object.keys(current.filters).length) body.filter = current.filters;
    const found = await request(collectionPath(current.collection) + "/search", body);
    lastHits = found.hits;
    showNotes(found);
    showPage(current.collection, current);
    const shown = Math.min(PAGE_SIZE, Math.max(0, found.hits.length - (current.page - 1) * PAGE_SIZE));
    const counted = found.hits.length > current.page * PAGE_SIZE ? "more than " + current.page * PAGE_SIZE
      : String(found.hits.length);
    say(shown + " of " + counted + " hit(s) · " + Math.round(found.took_ms) + " ms");
  } catch (error) {
    hitsList.replaceChildren();
    $("notes").replaceChildren();
    $("pager").hidden = true;
    say(error.message, true);
  }
}

// -- the page follows the URL ---------------------------------------------------------------
async function show() {
  const current = state();
  $("q").value = current.q;
  $("mode").value = current.mode;
  $("rerank").checked = current.rerank;
  $("diverse").value = current.diverse;
  $("dedup").checked = current.dedup;
  if (current.collection) collectionSelect.value = current.collection;
  if (!collectionSelect.value && current.collection) {
    say("There is no collection " + JSON.stringify(current.collection) + ".", true);
    return;
  }
  const collection = collectionSelect.value;
  if (collection) {
    try {
      const info = await describe(collection);
      showFilters(info.facets, current.filters);
      const readers = info.queryImage || { embedders: [], ocr: false };
      // offered only where some stage can read an image (an image embedder, or OCR)
      $("query-image-control").hidden = !readers.embedders.length && !readers.ocr;
    } catch (error) {
      say(error.message, true);
      return;
    }
  }
  await search({ ...current, collection: current.collection || "" });
}

async function start() {
  try {
    await loadCollections();
  } catch (error) {
    say(error.message, true);
    return;
  }
  await show();
}

// -- events ---------------------------------------------------------------------------------
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const collection = collectionSelect.value;
  if (!collection) {
    say(collectionSelect.options.length ? "Choose a collection first." :
      "There is no collection yet: create one above, then add files.", true);
    return;
  }
  const kept = collection === state().collection ? state().filters : {};
  go({ collection, q: $("q").value, mode: $("mode").value, rerank: $("rerank").checked,
    diverse: $("diverse").value, dedup: $("dedup").checked, page: 1, filters: kept });
});
collectionSelect.addEventListener("change", () => {
  go({ collection: collectionSelect.value, q: $("q").value, page: 1, filters: {} });
});
$("previous").addEventListener("click", () => go({ page: state().page - 1 }));
$("next").addEventListener("click", () => go({ page: state().page + 1 }));
$("viewer-close").addEventListener("click", () => $("viewer").close());
window.addEventListener("popstate", show);

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("new-name").value.trim();
  try {
    await request("v1/collections", { name });
    await loadCollections();
    go({ collection: name, q: "", page: 1, filters: {} });
    say("Created collection " + name + ": add files below.");
  } catch (error) {
    say(error.message, true);
  }
});

$("query-image").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  queryImage = file ? await readAsDataUrl(file) : null;
});

// an image dropped onto the search form is the query's image (the typed text goes with it)
form.addEventListener("dragover", (event) => event.preventDefault());
form.addEventListener("drop", async (event) => {
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (!file) return;
  event.preventDefault();
  queryImage = await readAsDataUrl(file);
  form.requestSubmit();
});

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function addFiles(files) {
  // the files as they are, through the server's ingest (the CLI's): PDFs by page, images
  // by OCR, any text encoding, HTML as text
  const added = $("added");
  const collection = collectionSelect.value;
  if (!collection) {
    added.textContent = "Create or choose a collection first.";
    added.className = "error";
    return;
  }
  const body = new FormData();
  for (const file of files) body.append("files", file, file.name);
  added.textContent = "adding " + files.length + " file(s)…";
  added.className = "";
  try {
    const response = await fetch(collectionPath(collection) + "/files",
      { method: "POST", headers: authorization(), body });
    if (!response.ok) throw await failure(response);
    const report = await response.json();
    const skipped = report.skipped.map((item) => item.path + " (" + (item.error || item.reason) + ")");
    added.textContent = "added " + report.added + ", updated " + report.updated +
      ", unchanged " + report.unchanged + (skipped.length ? " · skipped: " + skipped.join("; ") : "");
    added.className = "done";
    collectionInfo.delete(collection);  // new metadata values to filter on
  } catch (error) {
    added.textContent = error.message;
    added.className = "error";
  }
}

const dropZone = $("add");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  addFiles(event.dataTransfer.files);
});
$("files").addEventListener("change", (event) => addFiles(event.target.files));

$("rerank-run").addEventListener("click", async () => {
  const ranked = $("ranked");
  const documents = $("rerank-documents").value
    .split("\n").map((line) => line.trim()).filter((line) => line);
  try {
    const found = await request("v1/rerank", { query: $("rerank-query").value, documents });
    ranked.replaceChildren(...found.results.map((result) => {
      const item = document.createElement("li");
      item.textContent = result.relevance_score.toFixed(4) + "  " + documents[result.index];
      return item;
    }));
  } catch (error) {
    ranked.replaceChildren();
    say(error.message, true);
  }
});

$("embed-run").addEventListener("click", async () => {
  const table = $("similarities");
  const texts = $("embed-texts").value
    .split("\n").map((line) => line.trim()).filter((line) => line);
  try {
    const found = await request("v1/embeddings", { input: texts });
    const vectors = found.data.map((row) => row.embedding);
    const dot = (a, b) => a.reduce((sum, value, i) => sum + value * b[i], 0);
    table.replaceChildren(...vectors.map((a, i) => {
      const row = document.createElement("tr");
      const name = document.createElement("th");
      name.textContent = texts[i];
      row.append(name, ...vectors.map((b) => {
        const cell = document.createElement("td");
        cell.textContent = dot(a, b).toFixed(3);  // the vectors are normalised: cosines
        return cell;
      }));
      return row;
    }));
  } catch (error) {
    table.replaceChildren();
    say(error.message, true);
  }
});

start();
