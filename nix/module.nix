# NixOS module: services.cim-realm runs `realm up` as a hardened systemd service.
{ self }:
{ config, lib, pkgs, ... }:

let
  cfg = config.services.cim-realm;
  inherit (lib) mkEnableOption mkOption mkIf types optionals escapeShellArgs;
in
{
  options.services.cim-realm = {
    enable = mkEnableOption "cim-realm, the identity, naming and secrets platform of a CIM";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      description = "The cim-realm package.";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/cim-realm";
      description = "Where the realm keeps its data (the local nats-server's JetStream store, context data).";
    };

    natsUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222";
      description = "Use an existing NATS server or cluster. Null: the realm runs its own nats-server.";
    };

    natsCredsFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Creds file for natsUrl (kept outside the Nix store, e.g. provisioned by agenix/sops).";
    };

    natsPort = mkOption {
      type = types.port;
      default = 4222;
      description = "Client port of the local nats-server (when natsUrl is null).";
    };

    httpHost = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address of the HTTP API (admin API, OIDC, OCSP/CRL, health, metrics).";
    };

    httpPort = mkOption {
      type = types.port;
      default = 8080;
      description = "Port of the HTTP API.";
    };

    pkiUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://realm.example.org";
      description = "Base URL relying parties reach the realm at: leaves name their CRL (/pki/crl/...) and OCSP (/pki/ocsp) under it. Null: http://httpHost:httpPort.";
    };

    vaultwarden = {
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://vault.example.org";
        description = "Vaultwarden the realm escrows generated keys, creds and client secrets in. Null: private material is returned once and kept nowhere.";
      };
      organization = mkOption {
        type = types.str;
        default = "cim-realm";
        description = "Organization (id or name) holding one collection per principal.";
      };
      email = mkOption {
        type = types.str;
        default = "";
        description = "Account the realm logs in as (a member of the organization).";
      };
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/cim-realm.env";
      description = ''
        systemd EnvironmentFile kept outside the Nix store (agenix, sops-nix): REALM_VAULTWARDEN_PASSWORD,
        REALM_VAULTWARDEN_CLIENT_ID / REALM_VAULTWARDEN_CLIENT_SECRET, REALM_CEREMONY_PASSPHRASE for the operator bundle.
      '';
    };

    logLevel = mkOption {
      type = types.enum [ "fatal" "error" "warn" "info" "debug" "trace" ];
      default = "info";
      description = "pino log level (secrets are redacted at every level).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the HTTP port (and the local NATS port) in the firewall.";
    };
  };

  config = mkIf cfg.enable {
    systemd.services.cim-realm = {
      description = "cim-realm";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = {
        REALM_LOG_LEVEL = cfg.logLevel;
      } // lib.optionalAttrs (cfg.pkiUrl != null) {
        REALM_PKI_URL = cfg.pkiUrl;
      } // lib.optionalAttrs (cfg.vaultwarden.url != null) {
        REALM_VAULTWARDEN_URL = cfg.vaultwarden.url;
        REALM_VAULTWARDEN_ORG = cfg.vaultwarden.organization;
        REALM_VAULTWARDEN_EMAIL = cfg.vaultwarden.email;
      };
      serviceConfig = {
        ExecStart = escapeShellArgs ([
          "${cfg.package}/bin/realm" "up"
          "--data" cfg.dataDir
          "--http-host" cfg.httpHost
          "--http-port" (toString cfg.httpPort)
          "--nats-port" (toString cfg.natsPort)
        ] ++ optionals (cfg.natsUrl != null) [ "--nats" cfg.natsUrl ]
          ++ optionals (cfg.natsCredsFile != null) [ "--creds" (toString cfg.natsCredsFile) ]);
        EnvironmentFile = optionals (cfg.environmentFile != null) [ (toString cfg.environmentFile) ];
        DynamicUser = true;
        StateDirectory = "cim-realm";
        WorkingDirectory = cfg.dataDir;
        Restart = "on-failure";
        RestartSec = 2;
        KillSignal = "SIGTERM";
        TimeoutStopSec = 30;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictNamespaces = true;
        LockPersonality = true;
        RestrictRealtime = true;
        SystemCallArchitectures = "native";
        ReadWritePaths = [ cfg.dataDir ];
        # DNS on port 53 needs this; harmless otherwise.
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
      };
    };

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall ([ cfg.httpPort ] ++ optionals (cfg.natsUrl == null) [ cfg.natsPort ]);
  };
}
