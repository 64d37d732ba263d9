// The search page: the form's state lives in the URL (?collection=&q=&mode=&rerank=1), so a
// search is a link. It calls the server's own API; nothing is loaded from another host.
"use strict";

const form = document.getElementById("search");
const statusLine = document.getElementById("status");
const hitsList = document.getElementById("hits");
const keyInput = document.getElementById("key");
keyInput.value = localStorage.getItem("omniretrieve-key") || "";

function headers() {
  const key = keyInput.value.trim();
  localStorage.setItem("omniretrieve-key", key);
  const sent = { "content-type": "application/json" };
  if (key) sent.authorization = "Bearer " + key;
  return sent;
}

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

async function request(path, body, method) {
  const response = await fetch(path, {
    method: method || (body === undefined ? "GET" : "POST"),
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

function snippetElement(hit) {
  // the hit's text with its highlights (document offsets; the text starts at text_start)
  const element = document.createElement("p");
  element.className = "snippet";
  const text = hit.text;
  let position = 0;
  for (const [start, end] of hit.highlights) {
    const from = start - hit.text_start;
    const to = end - hit.text_start;
    if (from < position || to > text.length) continue;
    element.append(text.slice(position, from));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(from, to);
    element.append(mark);
    position = to;
  }
  element.append(text.slice(position));
  return element;
}

function thumbnail(docId) {
  // an image document's picture, fetched from the API (inline data only)
  const image = document.createElement("img");
  image.className = "thumbnail";
  image.alt = docId;
  const collection = new URLSearchParams(location.search).get("collection");
  // the whole id as one path segment ("/" too): an id can never reach another endpoint
  request("v1/collections/" + encodeURIComponent(collection) + "/documents/" +
          encodeURIComponent(docId))
    .then((stored) => {
      if (stored.image && stored.image.startsWith("data:image/")) image.src = stored.image;
    })
    .catch(() => image.remove());
  return image;
}

function show(hits) {
  hitsList.replaceChildren();
  for (const hit of hits) {
    const item = document.createElement("li");
    item.className = "hit";
    item.dataset.id = hit.doc_id;
    const title = document.createElement("div");
    title.className = "id";
    title.textContent = hit.metadata && hit.metadata.title ? hit.metadata.title : hit.doc_id;
    const scores = document.createElement("div");
    scores.className = "scores";
    scores.textContent = "score " + hit.score.toFixed(4) + " · " +
      Object.entries(hit.scores).map(([stage, value]) => stage + " " + value.toFixed(3)).join(" · ");
    item.append(title, scores, snippetElement(hit));
    if (hit.has_image) item.append(thumbnail(hit.doc_id));
    if (hit.warning) {
      const warning = document.createElement("div");
      warning.className = "warning";
      warning.textContent = hit.warning;
      item.append(warning);
    }
    hitsList.append(item);
  }
}

let queryImage = null;  // a data URI: the query's image, with its text if any
document.getElementById("query-image").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  queryImage = file ? await readFile(file) : null;
});

// an image dropped onto the search form is the query's image (the typed text goes with it)
form.addEventListener("dragover", (event) => event.preventDefault());
form.addEventListener("drop", async (event) => {
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (!file) return;
  event.preventDefault();
  queryImage = await readFile(file);
  form.requestSubmit();
});

async function search() {
  const params = new URLSearchParams(location.search);
  const collection = params.get("collection");
  const text = params.get("q") || "";
  if (!collection || (!text && !queryImage)) return;
  const query = queryImage ? (text ? { text, image: queryImage } : { image: queryImage }) : text;
  say("searching…");
  try {
    const body = {
      query: query,
      mode: params.get("mode") || "hybrid",
      rerank: params.get("rerank") === "1",
      top_k: 10,
      max_chars: 400,
    };
    const found = await request("v1/collections/" + encodeURIComponent(collection) + "/search", body);
    show(found.hits);
    say(found.hits.length + " hit(s)");
  } catch (error) {
    hitsList.replaceChildren();
    say(error.message, true);
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  document.getElementById("q").value = params.get("q") || "";
  document.getElementById("mode").value = params.get("mode") || "hybrid";
  document.getElementById("rerank").checked = params.get("rerank") === "1";
  const select = document.getElementById("collection");
  try {
    const listed = await request("v1/collections");
    for (const name of listed.collections) select.append(new Option(name, name));
    if (params.get("collection")) select.value = params.get("collection");
  } catch (error) {
    say(error.message, true);
  }
  await search();
}

function readFile(file) {
  // text files as text, images as data URIs (the API's inline image form)
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    if (file.type.startsWith("image/")) reader.readAsDataURL(file);
    else reader.readAsText(file);
  });
}

async function addFiles(files) {
  const added = document.getElementById("added");
  const collection = document.getElementById("collection").value;
  if (!collection) { added.textContent = "create a collection first (POST /v1/collections)"; return; }
  const documents = [];
  for (const file of files) {
    const content = await readFile(file);
    documents.push(file.type.startsWith("image/")
      ? { id: file.name, image: content } : { id: file.name, text: content });
  }
  try {
    const report = await request(
      "v1/collections/" + encodeURIComponent(collection) + "/documents", { documents }, "PUT");
    added.textContent = "added " + report.added + ", updated " + report.updated +
      ", unchanged " + report.unchanged;
    added.className = "done";
  } catch (error) {
    added.textContent = error.message;
    added.className = "error";
  }
}

const dropZone = document.getElementById("add");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  addFiles(event.dataTransfer.files);
});
document.getElementById("files").addEventListener("change", (event) => addFiles(event.target.files));

document.getElementById("rerank-run").addEventListener("click", async () => {
  const ranked = document.getElementById("ranked");
  const documents = document.getElementById("rerank-documents").value
    .split("\n").map((line) => line.trim()).filter((line) => line);
  try {
    const found = await request("v1/rerank", {
      query: document.getElementById("rerank-query").value, documents,
    });
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

document.getElementById("embed-run").addEventListener("click", async () => {
  const table = document.getElementById("similarities");
  const texts = document.getElementById("embed-texts").value
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

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const params = new URLSearchParams();
  params.set("collection", document.getElementById("collection").value);
  params.set("q", document.getElementById("q").value);
  params.set("mode", document.getElementById("mode").value);
  if (document.getElementById("rerank").checked) params.set("rerank", "1");
  history.pushState(null, "", "?" + params.toString());
  search();
});
window.addEventListener("popstate", start);
start();
