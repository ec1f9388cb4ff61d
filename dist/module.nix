# services.basinix: the GitHub App (`basinix serve`) as a NixOS service,
# in the conventions of services.hydra and buildbot-nix's module:
# settings mirror config.example.yml (typed options generated from it,
# freeform for the rest), secrets come through systemd's LoadCredential
# (never the Nix store), the unit is hardened, Nix trusts the service's
# user and gets build.machines as its builders.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.basinix;
  settingsFormat = pkgs.formats.yaml { };
  # Where systemd puts the credentials of LoadCredential.
  credentials = "/run/credentials/basinix.service";
  settings = lib.recursiveUpdate cfg.settings {
    data_dir = "/var/lib/basinix";
    server = lib.optionalAttrs (cfg.privateKeyFile != null) { private_key_file = "${credentials}/private-key"; }
      // lib.optionalAttrs (cfg.webhookSecretFile != null) { webhook_secret_file = "${credentials}/webhook-secret"; };
  };
  configFile = settingsFormat.generate "basinix.yml" settings;
in
{
  options.services.basinix = {
    enable = lib.mkEnableOption "basinix, the pull-request reviewer for Nix package sets (its GitHub App)";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.basinix;
      defaultText = lib.literalExpression "pkgs.basinix";
      description = "The basinix package (the flake's overlay provides it).";
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = import ./options.nix { inherit lib; };
      };
      default = { };
      description = ''
        basinix's configuration, as config.example.yml documents it (every
        key there is a typed option with its default and description; keys
        it only mentions are taken as they are). data_dir is the service's
        state directory; the secrets come from privateKeyFile and
        webhookSecretFile, not from here.
      '';
    };

    privateKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/basinix-private-key.pem";
      description = "The GitHub App's private key, given to the service by LoadCredential (a path outside the Nix store).";
    };

    webhookSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/basinix-webhook-secret";
      description = "The GitHub App's webhook secret, given to the service by LoadCredential.";
    };

    nginx = {
      enable = lib.mkEnableOption "an nginx virtual host in front of basinix, with TLS from ACME";
      virtualHost = lib.mkOption {
        type = lib.types.str;
        example = "basinix.example.org";
        description = "The virtual host's name; server.public_url should be https://NAME.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.privateKeyFile != null && cfg.webhookSecretFile != null;
        message = "services.basinix: privateKeyFile and webhookSecretFile must be set (basinix setup writes both)";
      }
    ];

    systemd.services.basinix = {
      description = "basinix, the pull-request reviewer for Nix package sets";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" "nix-daemon.socket" ];
      wants = [ "network-online.target" ];
      path = [ config.nix.package pkgs.git ];
      environment = { HOME = "/var/lib/basinix"; XDG_CACHE_HOME = "/var/lib/basinix/cache"; };
      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} serve --config ${configFile}";
        DynamicUser = true;
        User = "basinix";
        StateDirectory = "basinix";
        StateDirectoryMode = "0750";
        LoadCredential = lib.optional (cfg.privateKeyFile != null) "private-key:${cfg.privateKeyFile}"
          ++ lib.optional (cfg.webhookSecretFile != null) "webhook-secret:${cfg.webhookSecretFile}";
        Restart = "on-failure";
        RestartSec = "10s";
        # Hardening: basinix talks to the Nix daemon and GitHub, and writes
        # only its state directory.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        SystemCallArchitectures = "native";
        CapabilityBoundingSet = "";
        UMask = "0027";
      };
    };

    # basinix builds through the daemon, with the configured machines.
    nix.settings.trusted-users = [ "basinix" ];
    nix.buildMachines = map
      (line:
        let f = lib.splitString " " line; at = i: d: if builtins.length f > i && builtins.elemAt f i != "-" then builtins.elemAt f i else d; in
        {
          hostName = lib.removePrefix "ssh-ng://" (lib.removePrefix "ssh://" (builtins.head f));
          protocol = if lib.hasPrefix "ssh://" (builtins.head f) then "ssh" else "ssh-ng";
          systems = lib.splitString "," (at 1 "x86_64-linux");
          sshKey = at 2 null;
          maxJobs = lib.toInt (at 3 "1");
          speedFactor = lib.toInt (at 4 "1");
          supportedFeatures = lib.filter (x: x != "") (lib.splitString "," (at 5 ""));
          mandatoryFeatures = lib.filter (x: x != "") (lib.splitString "," (at 6 ""));
          publicHostKey = at 7 null;
        })
      (cfg.settings.build.machines or [ ]);
    nix.distributedBuilds = (cfg.settings.build.machines or [ ]) != [ ];

    services.nginx = lib.mkIf cfg.nginx.enable {
      enable = true;
      recommendedProxySettings = true;
      recommendedTlsSettings = true;
      virtualHosts.${cfg.nginx.virtualHost} = {
        forceSSL = true;
        enableACME = true;
        locations."/".proxyPass = "http://${cfg.settings.server.address}:${toString cfg.settings.server.port}";
      };
    };
  };
}
