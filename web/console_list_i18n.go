package web

// The console list's search and filter.
func init() {
	for l, m := range map[Lang]map[string]string{
		langEN: {
			"console.search":        "Search by name or functional group",
			"console.search.button": "Search",
			"console.filter.all":    "All statuses",
			"console.nomatch":       "No integration matches this search.",
		},
		langFR: {
			"console.search":        "Rechercher par nom ou groupe fonctionnel",
			"console.search.button": "Rechercher",
			"console.filter.all":    "Tous les statuts",
			"console.nomatch":       "Aucune intégration ne correspond à cette recherche.",
		},
	} {
		for k, v := range m {
			messages[l][k] = v
		}
	}
}
