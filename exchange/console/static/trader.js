// The trader's page, live over the exchange's WebSocket (signed in by the session cookie): an
// order ticket checked against the instrument's tick, lot and band before it is sent; open
// orders with amend and cancel; fills and balances as the exchange reports them.
"use strict";

(() => {
  const root = document.getElementById("trading");
  if (!root) return;
  const instruments = new Map(JSON.parse(root.dataset.instruments).map((i) => [i.symbol, i]));
  const form = document.getElementById("ticket");
  const result = document.getElementById("t-result");
  const field = (name) => form.elements.namedItem(name);

  function rules() {
    const i = instruments.get(field("symbol").value);
    document.getElementById("t-rules").textContent = i === undefined ? "" :
      `${CERX.say("instrument.tick")} ${CERX.yuan(i.tick_fen)} · ${CERX.say("instrument.lot")} ` +
      `${i.lot_t} t (${i.min_quantity_t}–${i.max_quantity_t}) · ${CERX.say("instrument.band")} ` +
      `${CERX.yuan(i.band_fen[0])} – ${CERX.yuan(i.band_fen[1])}`;
    return i;
  }

  // What the exchange would refuse, refused here first with the same code.
  function check(i, type, price, quantity) {
    if (quantity === null || quantity < i.min_quantity_t || quantity > i.max_quantity_t) {
      return "QUANTITY_MUST_BE_WITHIN_LIMITS";
    }
    if (quantity % i.lot_t !== 0) return "QUANTITY_MUST_BE_ON_LOT";
    if (type === "limit") {
      if (price === null) return "PRICE_MUST_BE_GIVEN_FOR_LIMIT";
      if (price % i.tick_fen !== 0) return "PRICE_MUST_BE_ON_TICK";
      if (price < i.band_fen[0] || price > i.band_fen[1]) return "PRICE_MUST_BE_WITHIN_BAND";
    }
    return null;
  }

  function refuse(code) {
    CERX.show(result, { ok: false, error: { code, msg: code } });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const i = rules();
    const type = field("type").value;
    const price = type === "limit" ? CERX.parseYuan(field("price").value) : null;
    const quantity = CERX.parseTonnes(field("quantity").value);
    const code = check(i, type, price, quantity);
    if (code) { refuse(code); return; }
    const args = {
      symbol: i.symbol, cl_ord_id: `web-${CERX.newKey().slice(0, 20)}`,
      side: form.querySelector('input[name="side"]:checked').value,
      quantity, type, tif: field("tif").value, post_only: field("post_only").checked,
    };
    if (price !== null) args.price = price;
    placed.set(args.cl_ord_id, { side: args.side, price });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true; // one click, one order
    try {
      CERX.show(result, await socket.request("new_order", args));
    } finally {
      button.disabled = false;
    }
  });
  // another instrument: its book beside the ticket
  field("symbol").addEventListener("change", () => {
    location.assign(`?symbol=${encodeURIComponent(field("symbol").value)}`);
  });
  rules();

  const placed = new Map(); // cl_ord_id -> what the report does not repeat: side and price
  const orders = document.getElementById("orders");
  function orderRow(m) {
    const tr = document.createElement("tr");
    tr.dataset.order = m.order_id; tr.dataset.symbol = m.symbol;
    const order = { ...m, ...(placed.get(m.cl_ord_id) ?? { side: null, price: null }) };
    const cells = [order.order_id, order.symbol, CERX.say(`side.${order.side}`),
      CERX.yuan(order.price), order.leaves_qty];
    for (const [k, value] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = value; if (k >= 3) td.className = "num"; tr.append(td);
    }
    const actions = document.createElement("td");
    actions.innerHTML = '<input class="amend-price" inputmode="decimal" size="7"> ' +
      '<input class="amend-qty" inputmode="numeric" size="5"> ' +
      '<button type="button" class="amend"></button> <button type="button" class="cancel"></button>';
    actions.querySelector(".amend-price").value =
      order.price === null ? "" : CERX.yuan(order.price).replace(/,/g, "");
    actions.querySelector(".amend-price").setAttribute("aria-label", CERX.say("trader.new_price"));
    actions.querySelector(".amend-qty").value = m.quantity;
    actions.querySelector(".amend-qty").setAttribute("aria-label", CERX.say("trader.new_quantity"));
    actions.querySelector(".amend").textContent = CERX.say("trader.amend");
    actions.querySelector(".cancel").textContent = CERX.say("trader.cancel");
    tr.append(actions);
    return tr;
  }

  orders.addEventListener("click", async (event) => {
    const row = event.target.closest("tr[data-order]");
    if (!row) return;
    const target = { symbol: row.dataset.symbol, order_id: Number(row.dataset.order) };
    if (event.target.classList.contains("cancel")) {
      CERX.show(result, await socket.request("cancel", target));
    } else if (event.target.classList.contains("amend")) {
      const quantity = CERX.parseTonnes(row.querySelector(".amend-qty").value);
      const priceText = row.querySelector(".amend-price").value.replace(/,/g, "").trim();
      const price = priceText === "" ? null : CERX.parseYuan(priceText);
      if (quantity === null || (priceText !== "" && price === null)) {
        refuse("INVALID_ARGS");
        return;
      }
      // a price left empty (an order placed elsewhere, whose price this page never saw) is
      // left as it is
      const args = price === null ? { ...target, quantity } : { ...target, quantity, price };
      const reply = await socket.request("amend", args);
      CERX.show(result, reply);
      if (reply.ok && price !== null) row.cells[3].textContent = CERX.yuan(price);
    }
  });

  function onExecution(m) {
    const row = orders.querySelector(`tr[data-order="${m.order_id}"]`);
    if (m.status === "new" && !row && m.leaves_qty > 0) {
      orders.querySelector("tr.empty")?.remove();
      orders.append(orderRow(m));
    } else if (row && m.leaves_qty === 0) {
      row.remove();
    } else if (row) {
      row.cells[4].textContent = m.leaves_qty;
    }
    if (m.last_qty) {
      const tr = document.createElement("tr");
      const side = placed.get(m.cl_ord_id)?.side ?? null;
      for (const [text, cls] of [[m.trade_id, ""], [m.symbol, ""], [CERX.say(`side.${side}`), ""],
        [CERX.yuan(m.last_price), "num"], [m.last_qty, "num"], ["", "num"]]) {
        const td = document.createElement("td");
        td.textContent = text; td.className = cls; tr.append(td);
      }
      document.getElementById("fills").prepend(tr);
    }
  }

  const state = document.getElementById("ws-state");
  const socket = CERX.socket(
    () => {},
    (m) => {
      if (m.type === "execution") onExecution(m);
      else if (m.type === "balance") {
        document.getElementById("tradable").textContent = CERX.yuan(m.available_fen);
      }
    },
    (live) => { state.textContent = CERX.say(live ? "live" : "offline"); },
  );
})();
