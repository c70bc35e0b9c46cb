{
  description = "cim-realm: identity, naming and secrets platform of a CIM (PKI, NATS accounts, DNS, SSO, secrets) on NATS JetStream";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        cim-realm = pkgs.callPackage ./package.nix { };
        default = cim-realm;
      });

      nixosModules.default = import ./module.nix { inherit self; };
      nixosModules.cim-realm = self.nixosModules.default;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ nodejs_20 nats-server openssl openldap knot-dns knot-dns.bin dnsperf chromium ];
        };
      });
    };
}
