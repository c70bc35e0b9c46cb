# The realm as a Nix package: `npm ci` from package-lock.json, `npm run build`, and a `realm` wrapper that
# finds nats-server and openssl on its PATH.
{ lib, buildNpmPackage, nodejs_20, makeWrapper, nats-server, openssl }:

buildNpmPackage {
  pname = "cim-realm";
  version = "0.1.0";
  src = lib.cleanSource ../.;
  nodejs = nodejs_20;
  # Set on the first `nix build` (Nix prints the expected hash); it changes whenever package-lock.json does.
  npmDepsHash = lib.fakeHash;
  npmBuildScript = "build";
  nativeBuildInputs = [ makeWrapper ];
  # Browsers and CLIs used only by the tests are not fetched at build time.
  env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = "1";

  postInstall = ''
    makeWrapper ${nodejs_20}/bin/node $out/bin/realm \
      --add-flags $out/lib/node_modules/cim-realm/dist/services/cli/main.js \
      --prefix PATH : ${lib.makeBinPath [ nats-server openssl ]}
  '';

  meta = {
    description = "Identity, naming and secrets platform of a CIM";
    mainProgram = "realm";
    platforms = lib.platforms.linux;
  };
}
