package sandbox.hapi;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.ElementsSupportEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.CorsInterceptor;
import ca.uhn.fhir.rest.server.interceptor.ResponseHighlighterInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.util.Map;
import javax.sql.DataSource;
import org.hl7.fhir.dstu2.model.Subscription;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The sandbox's HAPI FHIR JPA server (R4): HAPI's own Spring configuration classes, plus the few
 * beans an application must supply, configured to behave like the public HAPI sandbox.
 *
 * <p>Why a bootstrap of our own: HAPI publishes no runnable JPA server on Maven Central (the
 * official starter ships only as a container image), so this class is the "starter" trimmed to what
 * the product needs: no CQL, MDM, IPS, OpenAPI or tester UI, which keeps startup short.
 */
@SpringBootApplication(
		excludeName = {
			"org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration",
			"org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration",
			"org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration",
			"org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration"
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class,
	SubscriptionChannelConfig.class,
	ThreadPoolFactoryConfig.class
})
public class HapiSandboxApplication {

	public static void main(String[] args) {
		SpringApplication.run(HapiSandboxApplication.class, args);
	}

	/** Storage behaviour: see {@link SandboxSettings} for each choice and why. */
	@Bean
	public JpaStorageSettings storageSettings(
			@Value("${sandbox.hapi.allow-inline-match-url-references:false}") boolean inlineMatchUrls) {
		return SandboxSettings.storageSettings(inlineMatchUrls);
	}

	/** Partitioning off, as on the public sandbox; HAPI's EMF factory looks this bean up. */
	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/**
	 * R4 rest-hook Subscriptions are delivered (the app's {@code /fhir-notify} re-checks a patient
	 * the moment a disclosure, Consent or signature is written), as on the public sandbox; no other
	 * channel type. Resource changes are queued and handed to the matcher every
	 * {@code sandbox.hapi.subscription-interval-millis} (HAPI's default is 5 s).
	 */
	@Bean
	public SubscriptionSettings subscriptionSettings(
			@Value("${sandbox.hapi.subscriptions-resthook:true}") boolean restHook,
			@Value("${sandbox.hapi.subscription-interval-millis:1000}") long intervalMillis) {
		SubscriptionSettings settings = new SubscriptionSettings();
		if (restHook) {
			settings.addSupportedSubscriptionType(Subscription.SubscriptionChannelType.RESTHOOK);
		}
		settings.setSubscriptionIntervalInMs(intervalMillis);
		return settings;
	}

	/** The email-delivery listener requires a sender; the sandbox never sends mail. */
	@Bean
	public IEmailSender emailSender() {
		return details -> {};
	}

	/** Binary content (e.g. bulk export files) is kept in the database, the HAPI default. */
	@Bean
	public DatabaseBinaryContentStorageSvcImpl binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}

	/**
	 * HAPI's entity manager factory over Boot's DataSource (H2 on disk). It must be declared with
	 * this concrete type: HAPI's HibernatePropertiesProvider autowires it to read the dialect.
	 */
	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);
		emf.setJpaPropertyMap(jpaProperties());
		return emf;
	}

	private static Map<String, Object> jpaProperties() {
		return Map.ofEntries(
				Map.entry("hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect"),
				Map.entry("hibernate.hbm2ddl.auto", "update"),
				Map.entry("hibernate.search.enabled", "false"),
				Map.entry("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner"),
				Map.entry("hibernate.jdbc.batch_size", "20"),
				Map.entry("hibernate.cache.use_query_cache", "false"),
				Map.entry("hibernate.cache.use_second_level_cache", "false"),
				Map.entry("hibernate.cache.use_structured_entries", "false"),
				Map.entry("hibernate.cache.use_minimal_puts", "false"),
				Map.entry("hibernate.format_sql", "false"),
				Map.entry("hibernate.show_sql", "false"));
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}

	/**
	 * Batch jobs (Bulk Data $export) advance between steps only on a maintenance pass, once a minute
	 * by default, so a tiny export takes two or three minutes. A shorter interval makes it seconds.
	 * Runs after all singletons exist and before HAPI schedules its jobs on context refresh.
	 */
	@Bean
	public SmartInitializingSingleton batchMaintenanceInterval(
			IJobMaintenanceService maintenance,
			@Value("${sandbox.hapi.batch-maintenance-millis:5000}") long intervalMillis) {
		return () -> {
			if (maintenance instanceof JobMaintenanceServiceImpl impl) {
				impl.setScheduledJobFrequencyMillis(intervalMillis);
			}
		};
	}

	/** The FHIR REST endpoint: every R4 resource provider, the system provider and the operations. */
	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviders,
			IJpaSystemProvider systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			BulkDataExportProvider bulkDataExportProvider,
			ValueSetOperationProvider valueSetOperationProvider) {
		FhirContext ctx = systemDao.getContext();
		ctx.setNarrativeGenerator(new NullNarrativeGenerator());
		RestfulServer server = new RestfulServer(ctx);
		server.registerProviders(resourceProviders.createProviders());
		server.registerProvider(systemProvider);
		server.registerProvider(bulkDataExportProvider);
		server.registerProvider(valueSetOperationProvider);
		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport));
		// Page sizes of the public sandbox: 20 by default, _count up to 500.
		pagingProvider.setDefaultPageSize(SandboxSettings.DEFAULT_PAGE_SIZE);
		pagingProvider.setMaximumPageSize(SandboxSettings.MAX_PAGE_SIZE);
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);
		server.setElementsSupport(ElementsSupportEnum.EXTENDED);
		server.registerInterceptor(new CorsInterceptor());
		server.registerInterceptor(new ResponseHighlighterInterceptor());
		return server;
	}

	/** The FHIR base is {@code /fhir}, as the fixed interfaces say. */
	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer server) {
		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, "/fhir/*");
		registration.setName("fhir");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
