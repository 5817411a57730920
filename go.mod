module github.com/nobounce/nobounce

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/baruwa-enterprise/clamd v1.0.1
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-milter v0.5.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
)
