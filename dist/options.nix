# Generated from config.example.yml by internal/nixos (go test ./internal/nixos -update):
# the typed options of services.basinix.settings, defaults and descriptions as there.
{ lib }:

{
  systems = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ "x86_64-linux" ];
    description = "The systems each package set is evaluated for; each is its own evaluation.";
  };
  nix = {
    bin_dir = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "Directory holding nix-instantiate, nix-store, ...; empty: look in PATH.";
    };
    options = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      description = "Extra Nix settings passed as --option NAME VALUE to every Nix command.";
    };
  };
  eval = {
    workers = lib.mkOption {
      type = lib.types.int;
      default = 0;
      description = "Evaluation processes at once, shared by all evaluations; 0: the core count.";
    };
    config = lib.mkOption {
      type = lib.types.str;
      default = "{ allowAliases = false; allowBroken = true; allowUnfree = true; allowUnsupportedSystem = true; allowInsecurePredicate = _: true; }";
      description = "The `config` argument of the package set. Aliases are off as in nixpkgs\nCI (attributes that only work with aliases are reported as alias\nerrors); the rest is allowed so that meta.broken and meta.platforms\ndecide what is skipped, not evaluation errors.";
    };
    attr_timeout = lib.mkOption {
      type = lib.types.str;
      default = "2m";
      description = "An evaluation process that makes no progress for this long is killed\nand the attribute it was on gets a time-limit error.";
    };
    timeout = lib.mkOption {
      type = lib.types.str;
      default = "1h";
      description = "Bound on one evaluation as a whole (base or head, one system), every\nprocess it starts: past it the review fails with a time-limit error and\nnothing of the evaluation is kept (a push or `@basinix eval` tries again).";
    };
    max_memory_mib = lib.mkOption {
      type = lib.types.int;
      default = 8192;
      description = "Resident memory bound of each evaluation process, in MiB. A walker's\nmemory grows with what it evaluated: past three quarters of the bound it\nhands the rest of its list to a new process at its next group (as\nnix-eval-jobs' workers restart past max-memory-size), losing nothing;\npast the bound itself the process is killed and the attribute it was on,\ntried alone, gets a memory-limit error.";
    };
    memory_budget_mib = lib.mkOption {
      type = lib.types.int;
      default = 0;
      description = "Bound on the walkers' resident memory together, in MiB (0: workers ×\nmax_memory_mib, as nix-eval-jobs budgets its workers): past it, the\nlargest walker hands the rest of its list over at its next group.";
    };
    max_attrs = lib.mkOption {
      type = lib.types.int;
      default = 1000000;
      description = "Bound on the attributes of one evaluation: a set that recurses without\nend fails with a clear error instead of growing basinix's memory.\n(A set already on its own path is not walked again, as nix-env does,\nand sets nested more than 16 levels deep fail.)";
    };
    max_deaths = lib.mkOption {
      type = lib.types.int;
      default = 200;
      description = "Processes one evaluation may lose to errors tryEval cannot catch (abort,\nundefined variable, ...: each costs a new import of the set); past it,\nthe attributes not evaluated yet get an error that says so.";
    };
    max_explained = lib.mkOption {
      type = lib.types.int;
      default = 200;
      description = "How many attributes that throw get their message fetched (one Nix\nprocess each); the others say \"evaluation failed (throw or assert)\".";
    };
    flakes = lib.mkOption {
      type = lib.types.str;
      default = "auto";
      description = "When a checkout is evaluated as a flake (its jobs reviewed as a CI):\nauto (a flake.nix and no default.nix, or a [flake] table in the\nrepository's .basinix.toml, which may name the flake's directory and\nits jobs' outputs: see README \"Flakes\"), always or never.";
    };
    flake_jobs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "basinixJobs" "hydraJobs" "checks" "packages" ];
      description = "The outputs a flake's jobs are looked for in; the first found is used\n(a repository's .basinix.toml may name its own).";
    };
    flake_local_inputs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Directories path: and git+file: inputs of a flake may be fetched from\n(none by default: a lock could name any file of this machine).";
    };
  };
  build = {
    cores = lib.mkOption {
      type = lib.types.int;
      default = 0;
      description = "Derivations built at once on this machine (nix-store -j); 0 builds only\non the remote machines. Default: the core count.\nmax_jobs: 4\nCores each local build may use (--cores); 0 leaves Nix's default.";
    };
    build_timeout = lib.mkOption {
      type = lib.types.str;
      default = "3h";
      description = "A build running longer than this, or printing nothing for\nmax_silent_time, ends with the result \"timeout\".";
    };
    max_silent_time = lib.mkOption {
      type = lib.types.str;
      default = "1h";
    };
    batch_size = lib.mkOption {
      type = lib.types.int;
      default = 256;
      description = "The most derivations one nix-store process is given; what is queued\nbeyond waits for the next batch, highest priority first.";
    };
    log_max_kib = lib.mkOption {
      type = lib.types.int;
      default = 4096;
      description = "Each build log is kept up to this size (its end: where failures are).";
    };
    machines = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "What the local machine builds. Unset: what Nix says (its system and\nextra-platforms, its system-features).\nlocal_systems: [x86_64-linux]\nlocal_features: [big-parallel, kvm]\nRemote builders, one /etc/nix/machines line each: URI, systems, SSH key,\nmax jobs, speed factor, supported features, mandatory features, base64\nhost key (\"-\" for a default). Each derivation goes to a free, fast\nmachine whose systems and features fit; a machine that cannot be\nreached is left alone for a while (30 s, doubling up to 10 min).";
    };
    machines_file = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "- \"ssh-ng://builder@arm1 aarch64-linux /etc/basinix/id_ed25519 4 2 big-parallel - c3NoLWVkMjU1MTkg...\"\nA file in the same format, read as well.";
    };
    ssh_options = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "Options for ssh (NIX_SSHOPTS), e.g. \"-p 2222 -o ConnectTimeout=10\".\nA port must go here or in an ssh config, never in the URI.";
    };
    # Local builds in cgroups (v2 with memory and cpu delegated, or v1;
    # detected at start, one log line when none is usable): each local Nix
    # process runs in a group of its own with memory_mib and cpus for each
    # build it runs at once (0: no limit of that kind). A build killed for
    # the memory limit fails "out of memory (limit N MiB)", remembered only
    # with remember_oom (more memory may build it). The builds must run in
    # the Nix process basinix starts (a single-user store, as root): the
    # daemon's builds are the daemon's children, outside the groups.
    cgroups = {
      memory_mib = lib.mkOption {
        type = lib.types.int;
        default = 0;
      };
      cpus = lib.mkOption {
        type = lib.types.number;
        default = 0.0;
      };
      remember_oom = lib.mkOption {
        type = lib.types.bool;
        default = false;
      };
      root = lib.mkOption {
        type = lib.types.str;
        default = "/sys/fs/cgroup";
      };
      features = lib.mkOption {
        type = lib.types.attrsOf lib.types.anything;
        default = { };
        description = "Builds that require a system feature get that class's share instead,\ne.g. big-parallel: { memory_mib: 16384, cpus: 16 }";
      };
    };
    min_free_memory_mib = lib.mkOption {
      type = lib.types.int;
      default = 0;
      description = "Below this much free memory (MemAvailable) or free disk where the store\nis, no local build starts (remote machines go on) until there is again,\nchecked every 5 s; the log says when it stops and starts. 0: not checked.";
    };
    min_free_disk_mib = lib.mkOption {
      type = lib.types.int;
      default = 0;
    };
    max_memory_pressure = lib.mkOption {
      type = lib.types.number;
      default = 0.0;
      description = "The same above this memory pressure: the share (percent) of the last\n10 s some task waited for memory (PSI \"some avg10\"). 0: not checked.";
    };
    machine_sizes = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = { };
      description = "Machines' sizes, by URI as in machines (the local machine's default to\nwhat it has): a big-parallel build goes to the machine with the most\ncores, one that ran out of memory before (it then needs twice its\nlimit) to a machine with that much, in a cgroup that gives it. E.g.\n\"ssh-ng://builder@arm1\": { cores: 64, memory_mib: 262144 }";
    };
    local_size = {
      cores = lib.mkOption {
        type = lib.types.int;
        default = 0;
      };
      memory_mib = lib.mkOption {
        type = lib.types.int;
        default = 0;
      };
    };
  };
  git = {
    checkouts = lib.mkOption {
      type = lib.types.int;
      default = 4;
      description = "Checkouts each repository keeps on disk, across runs, to be moved to\nthe next commit asked for (writing only the files that differ: a whole\nnixpkgs tree costs seconds of system time). More are made while more\nare in use at once, and removed when given back.";
    };
  };
  # What a review says of the outputs of the changed attributes built on both
  # sides: NAR and closure sizes before and after, the packages whose versions
  # or sizes moved in the closure, and the files added, removed and changed
  # (a file that differs only by store paths counts as equal).
  outputs = {
    diffs = lib.mkOption {
      type = lib.types.int;
      default = 100;
      description = "How many attributes per review get an output diff (0: none).";
    };
    max_files = lib.mkOption {
      type = lib.types.int;
      default = 200000;
      description = "An output with more files than this is not compared file by file.";
    };
    max_entries = lib.mkOption {
      type = lib.types.int;
      default = 50;
      description = "How many differing files (and closure packages) a diff lists, the\nbiggest size changes first.";
    };
    # diffoscope, run on request (`@basinix diff ATTR`, `basinix review
    # --diffoscope ATTR`) on an attribute's base and head outputs.
    diffoscope = {
      program = lib.mkOption {
        type = lib.types.str;
        default = "diffoscope";
      };
      timeout = lib.mkOption {
        type = lib.types.str;
        default = "10m";
      };
      max_report_kib = lib.mkOption {
        type = lib.types.int;
        default = 10240;
      };
    };
  };
  # What Nix's garbage collector must not take. basinix keeps each set with
  # one indirect root under data_dir/gcroots (a store file referencing the
  # paths); `basinix gc` updates them and shows what is kept and what is not,
  # `basinix gc --collect` then runs the collector. The .drv files of
  # remembered failures are always kept, so that a rebuild can run.
  gc = {
    # Policy per tracked branch, by "owner/repo:branch" or "branch", "*" for
    # the others: fixed-output (the sources the latest evaluation needs, so a
    # rebuild never downloads again), all (every output built for the latest
    # `evaluations` evaluations), archive (every output ever built for it) or
    # none.
    branches = {
      "*" = lib.mkOption {
        type = lib.types.str;
        default = "fixed-output";
      };
    };
    evaluations = lib.mkOption {
      type = lib.types.int;
      default = 3;
    };
    pr_keep = lib.mkOption {
      type = lib.types.str;
      default = "72h";
      description = "A PR's outputs (heads, bases, tests) are kept while it is open and this\nlong after it is closed.";
    };
    refresh_every = lib.mkOption {
      type = lib.types.str;
      default = "1h";
      description = "How often the server updates the roots (0: only `basinix gc` does).";
    };
  };
  # A binary cache successful outputs go to after their build, with their
  # closure, asynchronously (verdicts never wait; failed uploads are retried,
  # backing off from retry_min to an hour). Builders and reviewers substitute
  # from it. Each path is leased: a branch's outputs stay branch_keep after a
  # newer evaluation superseded them, a PR's pr_keep after it is closed, an
  # archived branch's (gc.branches: archive) forever. `basinix gc` removes
  # the expired ones from a file:// cache (never one a live path needs) and
  # lists them for the others.
  cache = {
    url = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "A Nix store URL Nix can copy to: file:///srv/nix-cache,\ns3://bucket?region=eu-west-1, https://cache.example (PUT). Empty: none.";
    };
    secret_key_file = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "Signs the uploads (nix-store --generate-binary-cache-key NAME secret public);\nits public half is trusted for substitution.";
    };
    substitute_url = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "Where builders substitute from, when not url (a file:// cache served\nover HTTP, say).";
    };
    branch_keep = lib.mkOption {
      type = lib.types.str;
      default = "336h";
    };
    pr_keep = lib.mkOption {
      type = lib.types.str;
      default = "72h";
    };
    retry_min = lib.mkOption {
      type = lib.types.str;
      default = "1m";
    };
    batch = lib.mkOption {
      type = lib.types.int;
      default = 64;
      description = "Paths per `nix copy`.";
    };
  };
  # basinix serve: the GitHub App (go-githubapp's section). Secrets may also
  # come from the environment: BASINIX_GITHUB_APP_INTEGRATION_ID,
  # BASINIX_GITHUB_APP_WEBHOOK_SECRET, BASINIX_GITHUB_APP_PRIVATE_KEY (and
  # BASINIX_GITHUB_V3_API_URL, ...), which win over this file, or from the
  # files server.private_key_file and server.webhook_secret_file name.
  github = {
    web_url = lib.mkOption {
      type = lib.types.str;
      default = "https://github.com/";
    };
    v3_api_url = lib.mkOption {
      type = lib.types.str;
      default = "https://api.github.com/";
    };
    v4_api_url = lib.mkOption {
      type = lib.types.str;
      default = "https://api.github.com/graphql";
    };
    app = {
      integration_id = lib.mkOption {
        type = lib.types.int;
        default = 0;
      };
      webhook_secret = lib.mkOption {
        type = lib.types.str;
        default = "";
      };
      private_key = lib.mkOption {
        type = lib.types.str;
        default = "";
      };
    };
  };
  server = {
    address = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1";
      description = "Where the webhook endpoint (/api/github/hook), the log pages (/log/...)\nand /healthz listen.";
    };
    port = lib.mkOption {
      type = lib.types.int;
      default = 8080;
    };
    public_url = lib.mkOption {
      type = lib.types.str;
      default = "http://127.0.0.1:8080";
      description = "How users reach this server; check runs link to it.";
    };
    read_timeout = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = "A client must send a whole request, body included, within read_timeout;\nat most max_connections are open at once (more are closed at once), and\nat most webhook_memory_mib of webhook bodies are held at once (a webhook\npast it is answered 503, and GitHub delivers it again). A webhook\nwithout a signature is refused before its body is read.";
    };
    max_connections = lib.mkOption {
      type = lib.types.int;
      default = 1024;
    };
    webhook_memory_mib = lib.mkOption {
      type = lib.types.int;
      default = 128;
    };
    drafts = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Review draft pull requests too.";
    };
    concurrent = lib.mkOption {
      type = lib.types.int;
      default = 4;
      description = "PR revisions worked on at once (their builds share the one pool, PRs\nwith fewer rebuilds first).";
    };
    tracked_branches = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Branches evaluated on every push (so PRs against them find the base\ncached); empty: each repository's default branch.";
    };
    push_checks = lib.mkOption {
      type = lib.types.str;
      default = "flakes";
      description = "Which pushes to tracked branches get check runs on their commits (the\nnew tip reviewed against the previous one, as a PR against its base):\nflakes (a flake's job check runs: push CI), all (package sets' eval and\nbuild check runs too), none.";
    };
    branch_priority = lib.mkOption {
      type = lib.types.int;
      default = -1000000;
      description = "Build priority of what changes on tracked branches (their history).\nPRs build at about 10 minus their rebuild count: the default puts branch\nbuilds after every PR's, on otherwise idle machines.";
    };
    github_retry_for = lib.mkOption {
      type = lib.types.str;
      default = "5m";
      description = "A GitHub API call answered 5xx or a secondary rate limit is retried\nthis long (honouring Retry-After). Final results that could not be sent\nare kept and sent again every 30 s and at start.";
    };
    machine_retry = lib.mkOption {
      type = lib.types.str;
      default = "1m";
      description = "A review that failed for the machine's fault (the Nix store busy or\nread-only, no space left, a process killed by the OOM killer) is tried\nagain this long after, the wait doubling up to 30 minutes, five times at\nmost; its check runs say so meanwhile. (Within one review such faults are\nfirst retried after 1 and 3 seconds.)";
    };
    reconcile_every = lib.mkOption {
      type = lib.types.str;
      default = "10m";
      description = "Open PRs are listed at start and this often, and a PR head without a\nrevision gets one: webhooks missed while down are not lost.";
    };
    rebuild_labels = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { x86_64-linux = "10.rebuild-linux"; x86_64-darwin = "10.rebuild-darwin"; };
      description = "The rebuild label per system: the prefix, to which \": 11-100\" (ofborg's\nbuckets) is added. A stale label with the same prefix is removed.";
    };
    # The maintainers (meta.maintainers with a github handle) of the packages
    # whose files a PR touches, as nixpkgs' CI uses them: asked for a review
    # (not the author, not who reviewed already; none when there are more
    # than max_reviewers: a mass change; GitHub asks only collaborators), and
    # labels set and removed as the head says ("" leaves a label out): the
    # author maintains every touched package, the PR adds a package, it
    # removes one.
    maintainers = {
      request_reviews = lib.mkOption {
        type = lib.types.bool;
        default = true;
      };
      max_reviewers = lib.mkOption {
        type = lib.types.int;
        default = 15;
      };
      by_maintainer_label = lib.mkOption {
        type = lib.types.str;
        default = "11.by: package-maintainer";
      };
      new_package_label = lib.mkOption {
        type = lib.types.str;
        default = "8.has: package (new)";
      };
      clean_up_label = lib.mkOption {
        type = lib.types.str;
        default = "8.has: clean-up";
      };
    };
    private_key_file = lib.mkOption {
      type = lib.types.str;
      default = "";
    };
    webhook_secret_file = lib.mkOption {
      type = lib.types.str;
      default = "";
    };
    oauth_client_secret_file = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "The App's OAuth client secret (GitHub login on the web pages), instead\nof github.oauth.client_secret; github.oauth.client_id names the client.";
    };
  };
  # Comment commands on pull requests: a line "@NAME rebuild", "@NAME build
  # ATTR...", ... Only users with one of these permissions on the repository
  # may run them; others get a short reply.
  commands = {
    name = lib.mkOption {
      type = lib.types.str;
      default = "basinix";
    };
    permissions = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "write" "maintain" "admin" ];
    };
    merge_method = lib.mkOption {
      type = lib.types.str;
      default = "merge";
      description = "`@basinix merge` merges this way when GitHub says the PR is mergeable,\nits latest review is of its current head, and the checks listed in\nmerge_checks passed: eval (no evaluation error), build (nothing newly\nfailing or new and failing on any system).";
    };
    merge_checks = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "eval" "build" ];
    };
  };
  # The web pages. Users log in with GitHub (the App's OAuth client: its
  # callback URL is PUBLIC_URL/login/callback) and act on PRs from their
  # pages with the permission commands need. A private repository's pages
  # are its readers' only, whatever this says.
  web = {
    private = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Every page needs a logged-in user.";
    };
    session_ttl = lib.mkOption {
      type = lib.types.str;
      default = "720h";
      description = "How long a login lasts.";
    };
  };
}
