package sandbox.hapi;

import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.model.entity.StorageSettings;

/**
 * How the public HAPI sandbox (hapi.fhir.org/baseR4) differs from HAPI's defaults, reproduced here
 * so that what passes locally behaves the same there. Values follow HAPI's own configuration of
 * that server (hapi-fhir-jpaserver-uhnfhirtest), except where a comment says otherwise.
 */
final class SandboxSettings {

	static final int DEFAULT_PAGE_SIZE = 20;
	static final int MAX_PAGE_SIZE = 500;

	private SandboxSettings() {}

	/**
	 * @param inlineMatchUrls whether a reference may be a search URL ("Patient?identifier=x"):
	 *     off on the public sandbox, so off by default here too.
	 */
	static JpaStorageSettings storageSettings(boolean inlineMatchUrls) {
		JpaStorageSettings s = new JpaStorageSettings();
		// Client-assigned ids: HAPI's default ALPHANUMERIC strategy (an id must contain a non-digit),
		// the same as the public sandbox; server-assigned ids stay sequential numbers.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		s.setAllowMultipleDelete(true);
		s.setAllowExternalReferences(true);
		s.setAllowInlineMatchUrlReferences(inlineMatchUrls);
		s.setAllowContainsSearches(true);
		s.setIndexMissingFields(StorageSettings.IndexEnabledEnum.ENABLED);
		s.setFilterParameterEnabled(true);
		s.setCountSearchResultsUpTo(50000);
		s.setFetchSizeDefaultMaximum(10000);
		s.setIndexOnContainedResources(true);
		s.setIndexIdentifierOfType(true);
		s.setIndexOnUpliftedRefchains(true);
		s.setMarkResourcesForReindexingUponSearchParameterChange(false);
		s.setDefaultSearchParamsCanBeOverridden(false);
		// Expunge is on on the public sandbox too (there behind a bearer token); here it lets a
		// developer reset the database without deleting files.
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		// Bulk Data $export: run the batch jobs here, and fast-track them so a small export finishes
		// in seconds instead of waiting for the once-a-minute maintenance pass (local divergence).
		s.setEnableTaskBulkExportJobExecution(true);
		s.setJobFastTrackingEnabled(true);
		// No Lucene/Elasticsearch: searches run on the relational indexes, as with HAPI's defaults.
		s.setAdvancedHSearchIndexing(false);
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);
		return s;
	}
}
