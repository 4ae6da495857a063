package ui

import (
	"embed"
	"io/fs"
)

// Asset files, vendored from npm (uplot@1.6.32, htmx.org@2.0.11) and sluice's own.
const (
	assetUPlotJS  = "uplot-1.6.32.min.js"
	assetUPlotCSS = "uplot-1.6.32.min.css"
	assetHTMX     = "htmx-2.0.11.min.js"
	assetDashJS   = "dash.js"
	assetDashCSS  = "dash.css"
)

//go:embed assets templates
var files embed.FS

// asset returns an embedded asset's content.
func asset(name string) string {
	b, err := fs.ReadFile(files, "assets/"+name)
	if err != nil {
		panic("ui: missing asset " + name) // embedded at build time: cannot happen
	}
	return string(b)
}
