// A market, live: the book's top levels, the trade tape and (on the market page) the statistics
// and one-minute candles, from the exchange's public channels (book snapshot then deltas by
// sequence; on a gap, subscribe again). The trader's page shows the book and the tape only.
"use strict";

(() => {
  const root = document.getElementById("market");
  if (!root) return;
  const symbol = root.dataset.symbol;
  const reference = Number(root.dataset.reference);
  let volume = Number(root.dataset.volume);
  const bids = new Map();
  const asks = new Map();
  let bookSeq = null;
  const LEVELS = 10;
  const SHANGHAI_S = 8 * 3600; // the chart shows the clock of Asia/Shanghai

  const box = document.getElementById("chart");
  const candles = box === null ? null : LightweightCharts.createChart(box, {
    autoSize: true,
    localization: { priceFormatter: (fen) => CERX.yuan(Math.round(fen)) },
    timeScale: { timeVisible: true, secondsVisible: false },
  }).addCandlestickSeries({ priceFormat: { type: "price", minMove: 1 } });

  const candle = (bar) => ({
    time: Math.floor(bar.start_ns / 1e9) + SHANGHAI_S,
    open: bar.open, high: bar.high, low: bar.low, close: bar.close,
  });
  // the last day of minutes first; the bars channel carries on from there
  const history = candles === null ? Promise.resolve() :
    fetch(`/api/v1/market/${encodeURIComponent(symbol)}/bars`)
      .then((response) => response.json())
      .then((reply) => { if (reply.ok) candles.setData(reply.result.map(candle)); });
  const show = (id, text) => {
    const element = document.getElementById(id);
    if (element !== null) element.textContent = text;
  };

  function renderBook() {
    const b = [...bids.entries()].sort((x, y) => y[0] - x[0]).slice(0, LEVELS);
    const a = [...asks.entries()].sort((x, y) => x[0] - y[0]).slice(0, LEVELS);
    const rows = [];
    for (let i = 0; i < Math.max(b.length, a.length); i += 1) {
      const tr = document.createElement("tr");
      const cells = [b[i]?.[1], b[i]?.[0], a[i]?.[0], a[i]?.[1]];
      cells.forEach((value, k) => {
        const td = document.createElement("td");
        td.className = `num ${k < 2 ? "bid" : "ask"}`;
        td.textContent = value === undefined ? "" : (k === 1 || k === 2 ? CERX.yuan(value)
          : value.toLocaleString("en-US"));
        tr.append(td);
      });
      rows.push(tr);
    }
    document.getElementById("book").replaceChildren(...rows);
  }

  function onMessage(m) {
    if (m.type === "book_snapshot") {
      bids.clear(); asks.clear();
      for (const [p, q] of m.bids) bids.set(p, q);
      for (const [p, q] of m.asks) asks.set(p, q);
      bookSeq = m.seq;
      renderBook();
    } else if (m.type === "book") {
      if (bookSeq === null || m.seq !== bookSeq + 1) {
        bookSeq = null;
        socket.request("subscribe", { channels: [`book:${symbol}`] });
        return;
      }
      bookSeq = m.seq;
      for (const [side, price, quantity] of m.changes) {
        const levels = side === "buy" ? bids : asks;
        if (quantity === 0) levels.delete(price); else levels.set(price, quantity);
      }
      renderBook();
    } else if (m.type === "trade") {
      const tr = document.createElement("tr");
      const when = new Date(m.ts_ns / 1e6).toLocaleTimeString("zh-CN",
        { timeZone: "Asia/Shanghai", hour12: false });
      for (const [text, cls] of [[when, ""], [CERX.yuan(m.price), "num"],
        [m.quantity.toLocaleString("en-US"), "num"], [CERX.say(`side.${m.aggressor}`), ""]]) {
        const td = document.createElement("td");
        td.textContent = text; td.className = cls; tr.append(td);
      }
      const tape = document.getElementById("tape");
      tape.prepend(tr);
      while (tape.rows.length > 50) tape.deleteRow(-1);
      show("last", CERX.yuan(m.price));
      volume += m.quantity;
      show("volume", volume.toLocaleString("en-US"));
      show("change", CERX.yuan(m.price - reference));
    } else if (m.type === "bar" && candles !== null) {
      history.then(() => candles.update(candle(m)));
    }
  }

  const state = document.getElementById("book-state");
  const socket = CERX.socket(
    () => socket.request("subscribe",
      { channels: [`book:${symbol}`, `trades:${symbol}`, ...(candles ? [`bars:${symbol}`] : [])] }),
    onMessage,
    (live) => { state.textContent = CERX.say(live ? "live" : "offline"); },
  );
})();
