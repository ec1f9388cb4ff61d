-- The files a PR changes, as GitHub listed them for its head: pages show
-- them from here, so a page view never spends the installation's quota.
CREATE TABLE pr_files (
    repo TEXT NOT NULL,
    pr INTEGER NOT NULL,
    head_sha TEXT NOT NULL,
    files TEXT NOT NULL, -- JSON list of PRFile
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (repo, pr)
);
