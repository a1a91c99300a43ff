package fleet

import (
	"encoding/json"
	"html/template"
	"net/http"
	"time"
)

// Handler serves the read-only status page (GET /) and JSON API:
// GET /api/devices (the registry) and GET /api/stats (counters and the
// dataset's classes).
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.Devices())
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"collector": c.Stats(), "classes": c.ds.Classes()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Devices": c.Devices(), "Stats": c.Stats(), "Classes": c.ds.Classes(), "Now": time.Now()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

var page = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>LineSight fleet</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.offline{color:#a00}.online{color:#070}</style></head>
<body><h1>LineSight fleet</h1>
<h2>Devices</h2>
<table><tr><th>site</th><th>device</th><th>state</th><th>last seen</th><th>model</th><th>cameras (level)</th><th>health</th><th>outbox</th></tr>
{{range .Devices}}<tr><td>{{.Site}}</td><td>{{.ID}}</td><td class="{{.State}}">{{.State}}</td><td>{{.LastSeen.Format "2006-01-02 15:04:05"}}</td><td>{{.Model.Name}} {{.Model.Version}}</td><td>{{range .Cameras}}{{.ID}} ({{.Level}}) {{end}}</td><td>{{.Health}}</td><td>{{.Outbox}}</td></tr>
{{else}}<tr><td colspan="8">no device has reported yet</td></tr>{{end}}</table>
<h2>Dataset</h2>
<p>{{.Stats.Dataset}} samples; {{.Stats.Duplicates}} duplicates ignored; {{.Stats.Rejected}} refused.</p>
<table><tr><th>class</th><th>items</th></tr>{{range $k, $v := .Classes}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>
<p>API: <a href="/api/devices">/api/devices</a>, <a href="/api/stats">/api/stats</a></p>
</body></html>
`))
