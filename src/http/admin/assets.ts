import { sha256Source, type CspDirectives } from '../page-headers.js';

/** The whole stylesheet: plain, readable, high contrast, visible focus. */
export const STYLE = `
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}
a{color:#0645ad}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
header{display:flex;gap:2rem;align-items:center;padding:.75rem 1.5rem;background:#f2f4f7;border-bottom:1px solid #d0d5dd}
header nav ul{display:flex;gap:1.25rem;list-style:none;margin:0;padding:0}
header nav a[aria-current]{font-weight:700;color:#1a1a1a}
header form{margin-left:auto}
main{padding:1rem 1.5rem 3rem;max-width:80rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}
@media (max-width:60rem){table{display:block;max-width:100%;overflow-x:auto}}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #d0d5dd;padding:.5rem;text-align:left;vertical-align:top}
th{background:#f9fafb}
td form{display:inline}
label{display:block;font-weight:600;margin-top:1rem}
.hint{color:#475467;font-size:.875rem;margin:.125rem 0}
input,select{font:inherit;padding:.375rem .5rem;width:100%;max-width:40rem;border:1px solid #98a2b3;border-radius:4px}
input[readonly]{background:#f2f4f7}
button,.button{font:inherit;padding:.375rem .875rem;border:1px solid #344054;border-radius:4px;background:#fff;color:#1a1a1a;cursor:pointer;text-decoration:none;display:inline-block}
button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff}
button.danger{border-color:#b42318;color:#b42318}
:focus-visible{outline:3px solid #f79009;outline-offset:2px}
.actions{display:flex;gap:.75rem;margin-top:1.5rem;align-items:center}
.row{display:flex;gap:.5rem;max-width:40rem}
.flash{padding:.75rem 1rem;border-radius:4px;margin:1rem 0;border:1px solid}
.flash.ok{background:#ecfdf3;border-color:#039855}
.flash.error,.errors{background:#fef3f2;border:1px solid #d92d20;padding:.75rem 1rem;border-radius:4px}
.field-error{color:#b42318;font-weight:600;margin:.125rem 0}
.state-ok{color:#027a48;font-weight:600}.state-bad{color:#b42318;font-weight:600}.state-warn{color:#b54708;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.875rem;max-width:30rem}
dl.summary{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.25rem 1rem}dl.summary dt{font-weight:600}dl.summary dd{margin:0;overflow-wrap:anywhere}
.totals{font-size:1.125rem}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:1rem 1.5rem;margin:1rem 0}
.chart{margin:0;min-width:0}.chart figcaption{font-weight:600;font-size:.875rem}.chart svg{display:block;width:100%;height:auto}
.chart .axis{stroke:#667085}.chart .grid{stroke:#eaecf0}.chart .tick{font-size:10px;fill:#475467}.chart .slot:hover{fill:#f2f4f7}
.bar.received{fill:#1d4ed8}.bar.acknowledged{fill:#027a48}.bar.failed{fill:#b42318}.bar.latency{fill:#6941c6}.chart .mark{stroke:#1a1a1a}
.history td:last-child,.errors-list li{overflow-wrap:anywhere}
`;

/**
 * The one script: the copy buttons. They start hidden so that without
 * JavaScript there is no dead button; the field stays selectable instead.
 * navigator.clipboard needs a secure context (https or loopback), so the old
 * select + execCommand path is the fallback.
 */
export const COPY_SCRIPT = `
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  var field = document.getElementById(b.getAttribute('data-copy'));
  var status = document.getElementById(b.getAttribute('aria-describedby'));
  b.hidden = false;
  b.addEventListener('click', function () {
    var done = function () { status.textContent = 'Copied to the clipboard.'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { status.textContent = 'Copy failed; select the text and copy it.'; });
    } else {
      field.select();
      document.execCommand('copy');
      done();
    }
  });
});
`;

/**
 * Only the stylesheet and script above may run (by hash); no other origin is
 * contacted (see page-headers.ts for the rest of the policy).
 */
export const ADMIN_CSP: CspDirectives = {
  styleSrc: [sha256Source(STYLE)],
  scriptSrc: [sha256Source(COPY_SCRIPT)],
  imgSrc: ["'self'"],
};
