/**
 * The dashboard's only assets, inlined into every page under the response's CSP nonce: nothing is
 * loaded from the network, so it works offline and behind strict egress rules.
 */

/** The logo, a small cairn of stones, inline in the top bar; as a data URL it is the favicon (allowed by `img-src data:`). */
export const LOGO =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="22" height="22" aria-hidden="true"><rect width="32" height="32" rx="7" fill="#2b3449"/>' +
  '<ellipse cx="16" cy="24" rx="10" ry="4" fill="#8fa3c7"/><ellipse cx="16" cy="16.5" rx="7.5" ry="3.5" fill="#b7c5e0"/>' +
  '<ellipse cx="16" cy="10" rx="4.5" ry="3" fill="#e4eaf5"/></svg>';

export const FAVICON = `data:image/svg+xml,${encodeURIComponent(LOGO)}`;

export const CSS = `
:root{--bg:#f5f6f8;--surface:#fff;--border:#e2e5ea;--line:#eef0f3;--text:#1c2230;--muted:#687082;--accent:#2d5bd0;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;--radius:8px}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--text)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{background:#1c2230;color:#fff;display:flex;align-items:center;gap:28px;padding:0 24px;height:52px}
header.top .brand{display:flex;align-items:center;gap:9px;font-weight:650;font-size:16px;color:#fff;letter-spacing:.2px}
header.top nav{display:flex;gap:4px;height:100%}
header.top nav a{color:#c5cbd8;padding:0 12px;display:flex;align-items:center;border-bottom:2px solid transparent}
header.top nav a:hover{color:#fff;text-decoration:none}
header.top nav a.on{color:#fff;border-bottom-color:#7f9cf5}
header.top .ro{margin-left:auto;font-size:12px;color:#c5cbd8;border:1px solid #4a5266;border-radius:20px;padding:2px 10px}
main{max-width:1320px;margin:0 auto;padding:24px}
h1{font-size:20px;font-weight:650;margin:0;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
h2{font-size:15px;font-weight:650;margin:0 0 12px}
.head{display:flex;align-items:center;justify-content:space-between;gap:16px;margin-bottom:18px;flex-wrap:wrap}
.card{background:var(--surface);border:1px solid var(--border);border-radius:var(--radius);padding:16px 18px;margin-bottom:18px}
.card.flush{padding:0;overflow:hidden}
.card.flush h2{padding:14px 18px 0}
.mono,code,.id{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.notice{background:#eef4ff;border:1px solid #c9d8fb;color:#1d3f8f;border-radius:var(--radius);padding:10px 14px;margin-bottom:18px}
.problem{background:#fff1f0;border:1px solid #f5c2bd;color:#8a1c12;border-radius:var(--radius);padding:10px 14px;margin-bottom:18px}
table{width:100%;border-collapse:collapse}
th{font-size:11.5px;text-transform:uppercase;letter-spacing:.5px;color:var(--muted);font-weight:600;text-align:left;padding:10px 14px;border-bottom:1px solid var(--border);background:#fafbfc;white-space:nowrap}
td{padding:9px 14px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
tbody tr:hover{background:#fafbfd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.empty{padding:28px;text-align:center;color:var(--muted)}
.badge{display:inline-block;font-size:11px;font-weight:650;letter-spacing:.4px;padding:2px 8px;border-radius:20px;white-space:nowrap;border:1px solid transparent}
.s-success{background:#e7f5ec;color:#17693a;border-color:#bfe3cc}
.s-error{background:#fdecea;color:#b1261b;border-color:#f6c5bf}
.s-pending{background:#e8effd;color:#1d55b8;border-color:#c4d5f7}
.s-enqueued,.s-delayed{background:#fff4df;color:#8a5300;border-color:#f2d9a6}
.s-cancelled{background:#eef0f3;color:#4a5263;border-color:#d9dde4}
.s-max_recovery_attempts_exceeded{background:#f4eafe;color:#6d28c4;border-color:#dcc6f8}
.yes{color:#17693a;font-weight:600}.no{color:#b1261b;font-weight:600}
form.filters{display:flex;flex-wrap:wrap;gap:10px 12px;align-items:flex-end}
form.filters label,form.act label{display:flex;flex-direction:column;gap:3px;font-size:11.5px;color:var(--muted);font-weight:600}
input,select{font:inherit;font-size:13px;height:32px;border:1px solid #cfd4dc;border-radius:6px;padding:0 8px;background:#fff;color:var(--text);min-width:0}
input.mono{font-family:var(--mono);font-size:12.5px}
.nowrap{white-space:nowrap}
input:focus,select:focus{outline:2px solid #b9c9f5;border-color:#7f9cf5}
input.w-s{width:90px}input.w-m,select.w-m{width:170px}input.w-l{width:200px}
button,.button{white-space:nowrap;font:inherit;font-size:13px;font-weight:600;line-height:20px;border-radius:6px;padding:5px 12px;border:1px solid #cfd4dc;background:#fff;color:var(--text);cursor:pointer;display:inline-block}
button:hover,.button:hover{background:#f3f5f8;text-decoration:none}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}button.primary:hover{background:#2450bb}
button.danger{color:#b1261b;border-color:#efb8b1}button.danger:hover{background:#fdf0ee}
.actions{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end}
.card.toolbar{display:flex;align-items:center;gap:20px;padding:12px 18px}
.card.toolbar h2{margin:0}
h1 .id{font-size:15px;font-weight:600;background:#e9ecf2;border-radius:6px;padding:2px 8px}
form.act{display:flex;gap:8px;align-items:flex-end;padding:8px 10px;border:1px solid var(--line);border-radius:var(--radius);background:#fafbfc}
td code{white-space:nowrap}
td .actions{flex-wrap:nowrap;gap:6px}
td form.act{padding:0;border:0;background:none}
td form.act button{padding:3px 10px;font-size:12.5px}
.pager{display:flex;justify-content:space-between;align-items:center;padding:10px 14px;border-top:1px solid var(--line);font-size:13px}
.live{display:flex;align-items:center;gap:6px;font-size:12.5px;color:var(--muted);user-select:none}
.live input{margin:0}
dl.facts{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:14px 24px;margin:0}
@media (max-width:1100px){dl.facts{grid-template-columns:repeat(3,minmax(0,1fr))}}
@media (max-width:700px){dl.facts{grid-template-columns:repeat(2,minmax(0,1fr))}}
dl.facts div{min-width:0}
dl.facts dt{font-size:11.5px;text-transform:uppercase;letter-spacing:.5px;color:var(--muted);font-weight:600}
dl.facts dd{margin:2px 0 0;overflow-wrap:anywhere}
.io{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.io{grid-template-columns:1fr}}
pre.json{margin:0;font-family:var(--mono);font-size:12.5px;background:#f7f8fa;border:1px solid var(--line);border-radius:6px;padding:10px 12px;max-height:360px;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}
pre.stack{color:var(--muted)}
.err-title{color:#b1261b;font-weight:600;overflow-wrap:anywhere;margin-bottom:6px}
.waiting{display:flex;gap:10px;align-items:baseline;background:#f4f7ff;border:1px solid #d3def9;border-radius:var(--radius);padding:10px 14px;margin-bottom:14px}
.waiting b{color:#1d55b8}
.tl-head,.tl-row>summary{display:grid;grid-template-columns:44px minmax(170px,260px) 1fr 84px;gap:12px;align-items:center;padding:0 18px}
.tl-head{font-size:11.5px;color:var(--muted);border-bottom:1px solid var(--border);background:#fafbfc;height:34px;text-transform:uppercase;letter-spacing:.5px;font-weight:600}
.tl-head .scale{position:relative;height:100%}
.tl-head .scale span{position:absolute;top:9px;white-space:nowrap;transform:translateX(-50%);text-transform:none;letter-spacing:0;font-weight:500;font-variant-numeric:tabular-nums}
.tl-head .scale span:nth-child(1){left:0;transform:none}.tl-head .scale span:nth-child(2){left:25%}.tl-head .scale span:nth-child(3){left:50%}
.tl-head .scale span:nth-child(4){left:75%}.tl-head .scale span:nth-child(5){left:100%;transform:translateX(-100%)}
.tl-row{border-bottom:1px solid var(--line)}
.tl-row:last-child{border-bottom:0}
.tl-row>summary{list-style:none;cursor:pointer;min-height:40px}
.tl-row>summary::-webkit-details-marker{display:none}
.tl-row>summary:hover{background:#fafbfd}
.tl-row[open]>summary{background:#f7f9fc}
.tl-id{color:var(--muted);font-variant-numeric:tabular-nums;font-family:var(--mono);font-size:12px}
.tl-name{display:flex;flex-direction:column;min-width:0;padding:5px 0}
.tl-name b{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tl-name small{color:var(--muted);font-size:11.5px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.kind{font-size:10.5px;font-weight:650;letter-spacing:.4px;text-transform:uppercase;color:var(--muted);border:1px solid var(--border);border-radius:4px;padding:0 5px;margin-right:6px}
.tries{font-size:10.5px;font-weight:650;color:#8a5300;background:#fff4df;border:1px solid #f2d9a6;border-radius:4px;padding:0 5px;margin-left:6px}
.track{position:relative;height:22px;background:repeating-linear-gradient(90deg,transparent 0,transparent calc(25% - 1px),var(--line) calc(25% - 1px),var(--line) 25%)}
.bar{position:absolute;top:6px;height:10px;border-radius:3px;background:#4d7ce6;min-width:3px}
.bar.k-error{background:#d8483b}
.bar.k-wait{background:repeating-linear-gradient(135deg,#a9b8d6 0,#a9b8d6 4px,#c7d2e6 4px,#c7d2e6 8px)}
.bar.k-child{background:#7a5af0}
.bar.k-mark{background:#8a93a6;height:6px;top:8px;border-radius:6px}
.bar.open{box-shadow:inset -3px 0 0 #1d55b8}
.tl-dur{text-align:right;font-variant-numeric:tabular-nums;color:var(--muted);font-size:12.5px}
.tl-body{padding:6px 18px 16px 74px;display:grid;gap:10px}
.tl-body .meta{font-size:12.5px;color:var(--muted)}
.tl-empty{padding:22px 18px;color:var(--muted)}
.error-page{max-width:720px;margin:40px auto}
.error-page .code{font-size:13px;color:var(--muted);font-family:var(--mono)}
.error-page p{font-size:15px;overflow-wrap:anywhere}
`;

/**
 * Confirm dialogs for actions (`data-confirm` on a form) and live refresh: while the box is ticked
 * (remembered per browser), the page's `[data-live]` region and the waterfall's geometry are
 * fetched again every few seconds (the same URL with an `X-Cairn-Live: 1` header) and swapped in;
 * never while a field in the region has focus. The region is the server's escaped markup, parsed
 * by DOMParser, which runs no script.
 */
export const SCRIPT = `
(() => {
  document.addEventListener('submit', (event) => {
    const form = event.target;
    const message = form instanceof HTMLFormElement ? form.getAttribute('data-confirm') : null;
    if (message && !window.confirm(message)) event.preventDefault();
  });
  const box = document.getElementById('live');
  if (!box) return;
  const key = 'cairn.live';
  box.checked = box.dataset.default === 'on' && localStorage.getItem(key) !== 'off';
  box.addEventListener('change', () => {
    localStorage.setItem(key, box.checked ? 'on' : 'off');
    if (box.checked) refresh();
  });
  let busy = false;
  async function refresh() {
    const region = document.querySelector('[data-live]');
    if (!box.checked || busy || document.hidden || !region) return;
    const focused = document.activeElement;
    if (focused && region.contains(focused) && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName)) return;
    busy = true;
    try {
      const response = await fetch(location.href, { headers: { 'X-Cairn-Live': '1' }, credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) return;
      const next = await response.json();
      const doc = new DOMParser().parseFromString('<div data-live>' + next.html + '</div>', 'text/html');
      const fresh = doc.querySelector('[data-live]');
      if (!fresh) return;
      const open = new Set([...region.querySelectorAll('details[open][id]')].map((d) => d.id));
      for (const d of fresh.querySelectorAll('details[id]')) d.open = open.has(d.id);
      region.replaceWith(document.adoptNode(fresh));
      // Through the CSSOM: CSP blocks changing a style element's text, not its rules.
      const sheet = document.getElementById('geometry')?.sheet;
      if (sheet) {
        while (sheet.cssRules.length > 0) sheet.deleteRule(0);
        for (const rule of next.geometry.split('\\n')) if (rule.trim()) sheet.insertRule(rule, sheet.cssRules.length);
      }
      document.body.dataset.refreshed = String(Date.now());
    } catch {
      // the next tick tries again
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, Number(box.dataset.interval) || 3000);
})();
`;
