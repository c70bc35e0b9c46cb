# Quick start (README): `make up` starts the whole realm, `make test` runs the tests.
.PHONY: up test build lint bench setup clean

up: build
	node dist/services/cli/main.js up

test:
	scripts/setup.sh test
	npm run lint
	npm test

build:
	scripts/setup.sh run
	npm run build

lint:
	npm run lint

bench:
	scripts/setup.sh test
	npm run bench

clean:
	rm -rf dist
