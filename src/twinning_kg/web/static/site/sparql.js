// YASGUI on the SPARQL page (templates/sparql_yasgui.html), bound to this endpoint with one
// tab per example query. A file, not an inline script: the Content-Security-Policy allows
// scripts from this server only. The examples come from the page's JSON data block.

// Only the local "variables" autocompleter: "prefixes" loads prefix.cc, "property"
// and "class" ask LOV, both on the internet.
Yasgui.Yasqe.defaults.autocompleters = ["variables"];
Yasgui.Yasqe.defaults.prefixCcApi = "";
const endpoint = window.location.origin + window.location.pathname.replace(/\/$/, "");
document.getElementById("endpoint-url").textContent = endpoint;
Yasgui.defaults.requestConfig.endpoint = endpoint;
// [{name, query}] in file order (a list: JSON objects would lose the order).
const examples = JSON.parse(document.getElementById("examples").textContent);
const first = examples.length ? examples[0].query : "SELECT * WHERE { ?s ?p ?o } LIMIT 25";
const yasgui = new Yasgui(document.getElementById("yasgui"), {
  requestConfig: { endpoint: endpoint, method: "POST" },
  copyEndpointOnNewTab: true,
  // one set of saved tabs per page language: the example tabs are titled in it
  persistenceId: "twinning-kg-yasgui-" + document.documentElement.lang,
  endpointCatalogueOptions: { getData: () => [{ endpoint: endpoint }], keys: [] },
  yasqe: { value: first, autocompleters: ["variables"] },
});
// One tab per example query (rdflib-endpoint's mechanism), each bound to this endpoint;
// tabs a returning visitor still has (same name) are left as they are.
const existing = Object.keys(yasgui._tabs).map((id) => yasgui._tabs[id].persistentJson.name);
const firstTab = yasgui.getTab();
if (examples.length && firstTab && !existing.includes(examples[0].name)) firstTab.setName(examples[0].name);
examples.slice(1).forEach((example) => {
  if (existing.includes(example.name)) return;
  yasgui.addTab(false, {
    ...Yasgui.Tab.getDefaults(),
    name: example.name,
    requestConfig: { ...Yasgui.defaults.requestConfig, endpoint: endpoint, method: "POST" },
    yasqe: { value: example.query },
  });
});
if (firstTab) yasgui.selectTabId(firstTab.getId());
