// The disclosure's charts (Chart.js): tonnes by vintage and use, each year's cap and its use,
// carbon points by month. Every number comes from the page, as integers.
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("disclosure-data").textContent);
  const colours = ["#0b6e4f", "#2f80c0", "#f2a900", "#b3261e"];
  const integer = (value) => Number(value).toLocaleString("en-US");
  const options = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    scales: { y: { beginAtZero: true, ticks: { callback: integer, precision: 0 } } },
  };

  function bars(id, rows, names, type = "bar") {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, {
      type,
      data: {
        labels: rows.map((row) => String(row[0])),
        datasets: names.map((name, k) => ({
          label: CERX.say(name), data: rows.map((row) => row[k + 1]),
          backgroundColor: colours[k], borderColor: colours[k],
        })),
      },
      options,
    });
  }

  bars("chart-vintages", data.vintages,
    ["disclosure.issued", "disclosure.traded", "disclosure.surrendered", "disclosure.retired"]);
  bars("chart-years", data.years, ["field.total_cap_t", "disclosure.surrendered"]);
  bars("chart-points", data.points,
    ["disclosure.points_issued", "disclosure.points_distributed", "disclosure.points_cancelled"],
    "line");
})();
