// Verified emissions from a CSV file, a REST write per row, and a report of each row's outcome.
// Columns: year,account_id,emissions_t[,allocation_t] with a header line. A row's idempotency
// key is derived from its content, so uploading the same file again records nothing twice.
"use strict";

(() => {
  const form = document.getElementById("emissions-csv");
  if (!form) return;
  const report = document.getElementById("csv-report");
  const COLUMNS = ["year", "account_id", "emissions_t", "allocation_t"];

  async function keyOf(line) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(line));
    return "csv-" + Array.from(new Uint8Array(digest).slice(0, 16),
      (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function outcome(row, line, reply) {
    const tr = document.createElement("tr");
    const cells = [row, line, ""].map((text) => {
      const td = document.createElement("td"); td.textContent = text; return td;
    });
    CERX.show(cells[2], reply);
    tr.append(...cells);
    tr.className = reply.ok ? "ok" : "refused";
    report.tBodies[0].append(tr);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = await document.getElementById("emissions-file").files[0].text();
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    report.tBodies[0].replaceChildren();
    report.hidden = false;
    const header = lines[0].split(",").map((h) => h.trim());
    if (header.join(",") !== COLUMNS.slice(0, header.length).join(",") || header.length < 3) {
      outcome(1, lines[0], { ok: false, error: { code: "INVALID_ARGS",
        msg: `the header must be ${COLUMNS.join(",")} (allocation_t optional)` } });
      return;
    }
    for (const [index, line] of lines.entries()) {
      if (index === 0 || line === "") continue;
      const values = line.split(",").map((v) => v.trim());
      const body = {};
      header.forEach((column, k) => {
        if (values[k] !== undefined && values[k] !== "") {
          body[column] = CERX.parseTonnes(values[k]) ?? values[k];
        }
      });
      const reply = values.length > header.length
        ? { ok: false, error: { code: "INVALID_ARGS", msg: "more values than columns" } }
        : await CERX.post("/api/v1/regulator/verified-emissions", body, await keyOf(line));
      outcome(index + 1, line, reply);
    }
  });
})();
