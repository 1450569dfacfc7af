#include "api/status_page.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace llmn::api {
namespace {

std::string escape_html(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '&': o += "&amp;"; break;
            case '"': o += "&quot;"; break;
            case '\'': o += "&#39;"; break;
            default: o += c;
        }
    }
    return o;
}

// Server-side rows; the script below draws the same markup from /v1/swarm.
std::string rows_html(int n_layer, const std::vector<NodeView>& nodes) {
    std::string out;
    std::vector<int> cov(size_t(n_layer > 0 ? n_layer : 0), 0);
    char buf[256];
    for (const NodeView& n : nodes) {
        const double left = n_layer > 0 ? 100.0 * n.span_start / n_layer : 0, width = n_layer > 0 ? 100.0 * (n.span_end - n.span_start) / n_layer : 0;
        for (int l = std::max(0, n.span_start); l < n.span_end && l < n_layer; ++l) ++cov[size_t(l)];
        out += "<tr class=\"node\"><td class=\"addr\">" + escape_html(n.address) + "</td><td class=\"id\">" +
               escape_html(n.node_id.substr(0, 12)) + "</td><td>";
        std::snprintf(buf, sizeof buf, "<div class=\"track\"><div class=\"span\" style=\"left:%.2f%%;width:%.2f%%\"></div></div>", left, width);
        out += buf;
        std::snprintf(buf, sizeof buf, "</td><td>%d:%d</td><td>%.1f</td><td>%.2f</td><td>%d</td>", n.span_start, n.span_end,
                      n.tokens_per_s, n.rtt_ms, n.free_sessions);
        out += buf;
        out += "<td class=\"reach\">" + escape_html(n.reach) + "</td>";
        out += "<td class=\"" + std::string(n.health == "ok" ? "ok" : "down") + "\">" + escape_html(n.health) + "</td></tr>\n";
    }
    out += "<tr class=\"coverage\"><td>coverage</td><td></td><td><div class=\"cells\">";
    for (int c : cov) out += std::string("<span class=\"cell c") + std::to_string(std::min(c, 3)) + "\" title=\"" + std::to_string(c) + " nodes\"></span>";
    out += "</div></td><td colspan=\"6\"></td></tr>\n";
    return out;
}

const char* kStyle = R"(
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem} .meta{color:#555;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff} th,td{padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;text-align:left;font-size:.9rem}
td.addr,td.id{font-family:ui-monospace,monospace} .track{position:relative;height:14px;background:#eef;min-width:300px;border-radius:3px}
.span{position:absolute;top:0;height:14px;background:#3b6fd8;border-radius:3px} .cells{display:flex;min-width:300px;height:14px}
.cell{flex:1;margin-right:1px} .c0{background:#d33} .c1{background:#9cc3f5} .c2{background:#5a92e6} .c3{background:#2059c6}
.ok{color:#1a7f37} .down{color:#c62828;font-weight:bold}
)";

const char* kScript = R"(
function esc(s){return String(s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
async function refresh(){
  try{
    const r=await fetch('/v1/swarm',{cache:'no-store'}); const s=await r.json(); const L=s.n_layer; const cov=new Array(L).fill(0);
    let h='';
    for(const n of s.nodes){
      for(let l=Math.max(0,n.span[0]);l<n.span[1]&&l<L;l++)cov[l]++;
      h+='<tr class="node"><td class="addr">'+esc(n.address)+'</td><td class="id">'+esc(n.node_id.slice(0,12))+'</td><td><div class="track"><div class="span" style="left:'
        +(100*n.span[0]/L).toFixed(2)+'%;width:'+(100*(n.span[1]-n.span[0])/L).toFixed(2)+'%"></div></div></td><td>'+n.span[0]+':'+n.span[1]
        +'</td><td>'+n.tokens_per_s.toFixed(1)+'</td><td>'+n.rtt_ms.toFixed(2)+'</td><td>'+n.free_sessions+'</td><td class="reach">'+esc(n.reach)+'</td><td class="'+(n.health=='ok'?'ok':'down')+'">'+esc(n.health)+'</td></tr>';
    }
    h+='<tr class="coverage"><td>coverage</td><td></td><td><div class="cells">'+cov.map(c=>'<span class="cell c'+Math.min(c,3)+'" title="'+c+' nodes"></span>').join('')+'</div></td><td colspan="6"></td></tr>';
    document.getElementById('rows').innerHTML=h;
    document.getElementById('count').textContent=s.nodes.length;
    document.getElementById('active').textContent=s.active_sessions;
    document.getElementById('updated').textContent=new Date().toLocaleTimeString();
  }catch(e){document.getElementById('updated').textContent='unreachable ('+e+')';}
}
setInterval(refresh,2000);
)";

}  // namespace

std::string swarm_json(const std::string& model, int n_layer, const std::string& source, const std::vector<NodeView>& nodes,
                       int active_sessions) {
    nlohmann::json arr = nlohmann::json::array();
    for (const NodeView& n : nodes)
        arr.push_back({{"address", n.address}, {"node_id", n.node_id}, {"span", {n.span_start, n.span_end}},
                       {"tokens_per_s", n.tokens_per_s}, {"rtt_ms", n.rtt_ms}, {"free_sessions", n.free_sessions}, {"reach", n.reach}, {"health", n.health}});
    return nlohmann::json{{"model", model}, {"n_layer", n_layer}, {"source", source}, {"nodes", arr}, {"active_sessions", active_sessions}}
        .dump();
}

std::string status_page_html(const std::string& model, int n_layer, const std::string& source, const std::vector<NodeView>& nodes) {
    std::string h = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>llm-node swarm: " + escape_html(model) +
                    "</title><style>" + kStyle + "</style></head><body>\n";
    h += "<h1>llm-node swarm</h1>\n<div class=\"meta\">model <b>" + escape_html(model) + "</b>, " + std::to_string(n_layer) +
         " layers, served by " + escape_html(source) + "; <span id=\"count\">" + std::to_string(nodes.size()) +
         "</span> nodes, <span id=\"active\">0</span> generations running; updated <span id=\"updated\">now</span></div>\n";
    if (nodes.empty() && source == "this process")
        h += "<p>Every layer runs in this API server's process (--local).</p>\n";
    h += "<table><thead><tr><th>node</th><th>id</th><th>layers</th><th>span</th><th>tok/s</th><th>rtt ms</th><th>free slots</th><th>reach</th><th>health</th></tr></thead>"
         "<tbody id=\"rows\">\n" + rows_html(n_layer, nodes) + "</tbody></table>\n<script>" + kScript + "</script></body></html>\n";
    return h;
}

}  // namespace llmn::api
